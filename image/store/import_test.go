package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/mkimage"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// layeredSave is a three-layer docker save archive whose layers overwrite, delete (whiteout) and hide
// (opaque directory) what the ones below them hold.
func layeredSave(t *testing.T) []byte {
	var buf bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&buf, []mkimage.Image{{
		RepoTags: []string{"layers:1"},
		Layers: [][]mkimage.File{
			{{Name: "a/", Type: tar.TypeDir}, {Name: "a/keep", Body: []byte("1")}, {Name: "a/gone", Body: []byte("1")},
				{Name: "d/", Type: tar.TypeDir}, {Name: "d/old", Body: []byte("1")}},
			{{Name: "a/", Type: tar.TypeDir}, {Name: "a/keep", Body: []byte("2")}, {Name: "a/.wh.gone"},
				{Name: "link", Type: tar.TypeSymlink, Linkname: "a/keep"}},
			{{Name: "d/", Type: tar.TypeDir}, {Name: "d/.wh..wh..opq"}, {Name: "d/new", Body: []byte("3")}},
		},
	}}))
	return buf.Bytes()
}

// reorder rewrites a tar archive with the entries whose names contain "/layer.tar" (and their
// directories) in reverse order, the rest as they were.
func reorder(t *testing.T, archive []byte) []byte {
	type entry struct {
		hdr  *tar.Header
		body []byte
	}
	var layers, rest []entry
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body, err := io.ReadAll(tr)
		assert.NilError(t, err)
		if strings.Contains(hdr.Name, "/layer.tar") {
			layers = append([]entry{{hdr, body}}, layers...)
		} else {
			rest = append(rest, entry{hdr, body})
		}
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, e := range append(layers, rest...) {
		assert.NilError(t, tw.WriteHeader(e.hdr))
		_, err := tw.Write(e.body)
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return out.Bytes()
}

// readRootFS reads the files of the image's top snapshot.
func readRootFS(t *testing.T, s *Store, ctx context.Context, chain []digest.Digest) map[string]string {
	key := "view-" + randomID()
	mounts, err := s.sn().View(ctx, key, identity.ChainID(chain).String())
	assert.NilError(t, err)
	defer s.sn().Remove(ctx, key)
	got := map[string]string{}
	assert.NilError(t, mount.WithReadonlyTempMount(ctx, mounts, func(root string) error {
		return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(p)
				got[rel] = "-> " + target
				return err
			case fi.IsDir():
				got[rel] = "dir"
			default:
				b, err := os.ReadFile(p)
				got[rel] = string(b)
				return err
			}
			return nil
		})
	}))
	return got
}

func TestImportArchiveUnpacksOnTheWay(t *testing.T) {
	want := map[string]string{"a": "dir", "a/keep": "2", "d": "dir", "d/new": "3", "link": "-> a/keep"}
	for _, tc := range []struct {
		name     string
		reverse  bool
		unpacked bool // expected unpacked before Unpack runs
	}{
		{name: "layers in order", unpacked: true},
		// The layers' order is guessed wrong: Unpack must still build the right image.
		{name: "layers reversed", reverse: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, "berth-test")
			ctx, done, err := s.WithLease(context.Background())
			assert.NilError(t, err)
			defer done(context.Background())
			archive := layeredSave(t)
			if tc.reverse {
				archive = reorder(t, archive)
			}
			loaded, err := s.ImportArchive(ctx, bytes.NewReader(archive))
			assert.NilError(t, err)
			assert.Assert(t, is.Len(loaded, 1))
			mi, err := s.manifest(s.nsctx(ctx), loaded[0].Manifest)
			assert.NilError(t, err)
			chain := mi.parsed.RootFS.DiffIDs
			assert.Assert(t, is.Len(chain, 3))
			_, err = s.sn().Stat(s.nsctx(ctx), identity.ChainID(chain).String())
			assert.Check(t, tc.unpacked == (err == nil), "%v", err)

			assert.NilError(t, s.Unpack(ctx, loaded[0].Manifest, nil))
			assert.DeepEqual(t, readRootFS(t, s, s.nsctx(ctx), chain), want)
		})
	}
}

// A layer climbing out of the root, plainly or through a directory, fails the import as an invalid
// argument, and nothing extracted from it is left as a snapshot.
func TestImportArchiveTraversalLeavesNoSnapshot(t *testing.T) {
	for _, evil := range []string{"../../../etc/evil", "a/../../../etc/evil"} {
		s, _ := newStore(t, "berth-test")
		ctx, done, err := s.WithLease(context.Background())
		assert.NilError(t, err)
		var buf bytes.Buffer
		assert.NilError(t, mkimage.WriteSave(&buf, []mkimage.Image{{
			RepoTags: []string{"evil:1"},
			Layers:   [][]mkimage.File{{{Name: "ok", Body: []byte("x")}}, {{Name: evil, Body: []byte("x")}}},
		}}))
		_, err = s.ImportArchive(ctx, &buf)
		assert.Check(t, errdefs.IsInvalidArgument(err), "%s: %v", evil, err)
		assert.ErrorContains(t, err, "escapes the root filesystem")
		n := 0
		assert.NilError(t, s.sn().Walk(s.nsctx(ctx), func(_ context.Context, info snapshots.Info) error {
			n++
			return nil
		}))
		// The good bottom layer may stay (under the lease); the bad one was never committed.
		assert.Check(t, n <= 1, "%s: %d snapshots", evil, n)
		_, err = os.Stat("/etc/evil")
		assert.Check(t, os.IsNotExist(err))
		done(context.Background())
	}
}

type fakeWriter struct {
	content.Writer
	buf    bytes.Buffer
	writes int
	fail   error
}

func (f *fakeWriter) Write(p []byte) (int, error) {
	f.writes++
	if f.fail != nil {
		return 0, f.fail
	}
	return f.buf.Write(p)
}
func (f *fakeWriter) Status() (content.Status, error) {
	return content.Status{Offset: int64(f.buf.Len())}, nil
}
func (f *fakeWriter) Digest() digest.Digest { return digest.FromBytes(f.buf.Bytes()) }
func (f *fakeWriter) Close() error          { return nil }
func (f *fakeWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	if size != int64(f.buf.Len()) {
		return errors.New("size mismatch")
	}
	return nil
}

func TestAsyncWriter(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+7)
	fw := &fakeWriter{}
	w := NewAsyncWriter(fw)
	for off := 0; off < len(data); off += 100_000 {
		end := min(off+100_000, len(data))
		n, err := w.Write(data[off:end])
		assert.NilError(t, err)
		assert.Equal(t, n, end-off)
	}
	st, err := w.Status()
	assert.NilError(t, err)
	assert.Equal(t, st.Offset, int64(len(data)))
	assert.Equal(t, w.Digest(), digest.FromBytes(data))
	assert.NilError(t, w.Commit(context.Background(), int64(len(data)), ""))
	assert.NilError(t, w.Close())
	assert.Check(t, bytes.Equal(fw.buf.Bytes(), data))
	assert.Check(t, fw.writes <= len(data)/asyncChunk+1, "%d writes", fw.writes)

	// A failed send surfaces on a later call, and nothing after it is sent.
	boom := errors.New("boom")
	fw = &fakeWriter{fail: boom}
	w = NewAsyncWriter(fw)
	var werr error
	for i := 0; i < 10 && werr == nil; i++ {
		_, werr = w.Write(make([]byte, asyncChunk))
	}
	if werr == nil {
		werr = w.Commit(context.Background(), 0, "")
	}
	assert.Check(t, errors.Is(werr, boom), "%v", werr)
	assert.NilError(t, w.Close())
}

// memStore is a content store of one blob at a time whose commits can be slowed down or made to fail.
type memStore struct {
	content.Store
	mu        sync.Mutex
	committed map[digest.Digest]bool
	delay     time.Duration
	fail      error
}

func (m *memStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	return &memWriter{m: m}, nil
}

func (m *memStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.committed[desc.Digest] {
		return nil, errdefs.ErrNotFound
	}
	return nil, errdefs.ErrNotImplemented
}

type memWriter struct {
	fakeWriter
	m *memStore
}

func (w *memWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	time.Sleep(w.m.delay)
	if w.m.fail != nil {
		return w.m.fail
	}
	w.m.mu.Lock()
	w.m.committed[w.Digest()] = true
	w.m.mu.Unlock()
	return nil
}

func TestCheckingStoreCommitsInBackground(t *testing.T) {
	ctx := context.Background()
	m := &memStore{committed: map[digest.Digest]bool{}, delay: 50 * time.Millisecond}
	c := newCheckingStore(m, nil)
	blob := []byte("some blob")
	d := digest.FromBytes(blob)
	assert.NilError(t, content.WriteBlob(ctx, c, "b", bytes.NewReader(blob), ocispec.Descriptor{Size: int64(len(blob))}))
	// A read waits for the commits under way (the commit is slow: it is still running here).
	_, err := c.ReaderAt(ctx, ocispec.Descriptor{Digest: d})
	assert.Check(t, errdefs.IsNotImplemented(err), "%v", err)
	assert.NilError(t, c.wait())

	// A failed commit fails the import.
	m.fail = errors.New("disk on fire")
	assert.NilError(t, content.WriteBlob(ctx, c, "c", bytes.NewReader([]byte("other")), ocispec.Descriptor{Size: 5}))
	err = c.wait()
	assert.ErrorContains(t, err, "disk on fire")
}

// ociArchive is an OCI image layout (as a tar) of one image whose two layers are gzipped.
func ociArchive(t *testing.T) ([]byte, []digest.Digest) {
	return ociArchiveOf(t, [][]mkimage.File{
		{{Name: "a/", Type: tar.TypeDir}, {Name: "a/x", Body: []byte("1")}, {Name: "a/y", Body: []byte("1")}},
		{{Name: "a/", Type: tar.TypeDir}, {Name: "a/.wh.y"}, {Name: "z", Body: []byte("2")}},
	}, false)
}

// ociArchiveOf writes an OCI layout of one image with gzipped layers, the top layer's blob first when
// topFirst (exporters sort blobs by digest, so any order is possible).
func ociArchiveOf(t *testing.T, layerFiles [][]mkimage.File, topFirst bool) ([]byte, []digest.Digest) {
	type blob struct {
		name string
		data []byte
	}
	var blobs []blob
	add := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs = append(blobs, blob{"blobs/sha256/" + d.Encoded(), b})
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, files := range layerFiles {
		var raw, gz bytes.Buffer
		assert.NilError(t, mkimage.WriteLayer(&raw, files))
		diffIDs = append(diffIDs, digest.FromBytes(raw.Bytes()))
		zw := gzip.NewWriter(&gz)
		_, err := zw.Write(raw.Bytes())
		assert.NilError(t, err)
		assert.NilError(t, zw.Close())
		d := add(gz.Bytes())
		d.MediaType = ocispec.MediaTypeImageLayerGzip
		layers = append(layers, d)
	}
	cfg, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	assert.NilError(t, err)
	cd := add(cfg)
	cd.MediaType = ocispec.MediaTypeImageConfig
	m, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: layers})
	assert.NilError(t, err)
	md := add(m)
	md.MediaType = ocispec.MediaTypeImageManifest
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "docker.io/library/oci:1"}
	idx, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})
	assert.NilError(t, err)

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	put := func(name string, b []byte) {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		assert.NilError(t, err)
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	if topFirst {
		slices.Reverse(blobs[:len(layerFiles)])
	}
	for _, b := range blobs {
		put(b.name, b.data)
	}
	put("index.json", idx)
	assert.NilError(t, tw.Close())
	return out.Bytes(), diffIDs
}

func TestImportArchiveOCILayout(t *testing.T) {
	s, _ := newStore(t, "berth-test")
	ctx, done, err := s.WithLease(context.Background())
	assert.NilError(t, err)
	defer done(context.Background())
	archive, diffIDs := ociArchive(t)
	loaded, err := s.ImportArchive(ctx, bytes.NewReader(archive))
	assert.NilError(t, err)
	assert.Assert(t, is.Len(loaded, 1))
	assert.DeepEqual(t, loaded[0].Names, []string{"docker.io/library/oci:1"})
	// OCI layouts give no order to guess from: the layers are extracted ahead and placed once the
	// manifest is read, so Unpack has nothing left to do.
	_, err = s.sn().Stat(s.nsctx(ctx), identity.ChainID(diffIDs).String())
	assert.NilError(t, err)
	applied := 0
	assert.NilError(t, s.Unpack(ctx, loaded[0].Manifest, func(_ ocispec.Descriptor, done, a bool) {
		if done && a {
			applied++
		}
	}))
	assert.Equal(t, applied, 0)
	assert.DeepEqual(t, readRootFS(t, s, s.nsctx(ctx), diffIDs), map[string]string{"a": "dir", "a/x": "1", "z": "2"})
}

// Layers extracted ahead are only used where that gives what extracting in place gives: not a bottom
// layer with whiteouts (they would become devices), not a layer needing directories it does not list
// (they take the attributes of the layer below: p must stay 0700). Those are extracted in place; the
// result is the same whatever the blob order.
func TestImportArchiveAheadFallsBack(t *testing.T) {
	layers := [][]mkimage.File{
		{{Name: ".wh.nothing"}, {Name: "p/", Type: tar.TypeDir, Mode: 0o700}, {Name: "p/f", Body: []byte("1")}},
		{{Name: "p/g", Body: []byte("2")}}, // p/ is not listed: it must stay 0700
		{{Name: "q/", Type: tar.TypeDir}, {Name: "q/r", Body: []byte("4")}, {Name: "q/s", Type: tar.TypeLink, Linkname: "q/r"}},
	}
	for _, topFirst := range []bool{false, true} {
		s, _ := newStore(t, "berth-test")
		ctx, done, err := s.WithLease(context.Background())
		assert.NilError(t, err)
		archive, diffIDs := ociArchiveOf(t, layers, topFirst)
		loaded, err := s.ImportArchive(ctx, bytes.NewReader(archive))
		assert.NilError(t, err)
		applied := 0
		assert.NilError(t, s.Unpack(ctx, loaded[0].Manifest, func(_ ocispec.Descriptor, done, a bool) {
			if done && a {
				applied++
			}
		}))
		// The import extracted the first two in place and placed the last on them.
		assert.Equal(t, applied, 0, "topFirst=%v", topFirst)
		nctx := s.nsctx(ctx)
		assert.DeepEqual(t, readRootFS(t, s, nctx, diffIDs), map[string]string{"p": "dir", "p/f": "1", "p/g": "2", "q": "dir", "q/r": "4", "q/s": "4"})
		key := "view-" + randomID()
		mounts, err := s.sn().View(nctx, key, identity.ChainID(diffIDs).String())
		assert.NilError(t, err)
		assert.NilError(t, mount.WithReadonlyTempMount(nctx, mounts, func(root string) error {
			fi, err := os.Stat(filepath.Join(root, "p"))
			assert.NilError(t, err)
			assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o700))
			return nil
		}))
		assert.NilError(t, s.sn().Remove(nctx, key))
		done(context.Background())
	}
	// Alone, a bottom layer is seen without overlayfs, where a whiteout device would show.
	s, _ := newStore(t, "berth-test")
	ctx, done, err := s.WithLease(context.Background())
	assert.NilError(t, err)
	defer done(context.Background())
	archive, diffIDs := ociArchiveOf(t, layers[:1], false)
	loaded, err := s.ImportArchive(ctx, bytes.NewReader(archive))
	assert.NilError(t, err)
	assert.NilError(t, s.Unpack(ctx, loaded[0].Manifest, nil))
	assert.DeepEqual(t, readRootFS(t, s, s.nsctx(ctx), diffIDs), map[string]string{"p": "dir", "p/f": "1"})
}

// withV1JSON adds to a docker save archive the "<dir>/json" files docker writes, each naming the layer
// below as parent, and puts the layer directories in the order given (indexes, bottom layer 0).
func withV1JSON(t *testing.T, archive []byte, order []int) []byte {
	type entry struct {
		hdr  *tar.Header
		body []byte
	}
	var dirs [][]entry
	var rest []entry
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body, err := io.ReadAll(tr)
		assert.NilError(t, err)
		if dir, ok := strings.CutSuffix(hdr.Name, "/layer.tar"); ok {
			parent := ""
			if len(dirs) > 1 {
				parent = strings.TrimSuffix(dirs[len(dirs)-2][0].hdr.Name, "/")
			}
			js := []byte(`{"id":"` + dir + `","parent":"` + parent + `"}`)
			if parent == "" {
				js = []byte(`{"id":"` + dir + `"}`)
			}
			dirs[len(dirs)-1] = append(dirs[len(dirs)-1],
				entry{&tar.Header{Name: dir + "/json", Mode: 0o644, Size: int64(len(js)), Typeflag: tar.TypeReg}, js},
				entry{hdr, body})
			continue
		}
		if hdr.Typeflag == tar.TypeDir && strings.Count(hdr.Name, "/") == 1 {
			dirs = append(dirs, []entry{{hdr, body}})
			continue
		}
		rest = append(rest, entry{hdr, body})
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	var all []entry
	for _, i := range order {
		all = append(all, dirs[i]...)
	}
	for _, e := range append(all, rest...) {
		assert.NilError(t, tw.WriteHeader(e.hdr))
		_, err := tw.Write(e.body)
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return out.Bytes()
}

func TestImportArchiveFollowsV1Parents(t *testing.T) {
	want := map[string]string{"a": "dir", "a/keep": "2", "d": "dir", "d/new": "3", "link": "-> a/keep"}
	for _, tc := range []struct {
		name      string
		order     []int
		extracted int // layers in place after the import: extracted in order, or ahead and then placed
	}{
		{name: "in order", order: []int{0, 1, 2}, extracted: 3},
		{name: "middle layer last", order: []int{0, 2, 1}, extracted: 3},
		{name: "bottom layer last", order: []int{2, 1, 0}, extracted: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, "berth-test")
			ctx, done, err := s.WithLease(context.Background())
			assert.NilError(t, err)
			defer done(context.Background())
			loaded, err := s.ImportArchive(ctx, bytes.NewReader(withV1JSON(t, layeredSave(t), tc.order)))
			assert.NilError(t, err)
			assert.Assert(t, is.Len(loaded, 1))
			applied := 0
			assert.NilError(t, s.Unpack(ctx, loaded[0].Manifest, func(_ ocispec.Descriptor, done, a bool) {
				if done && a {
					applied++
				}
			}))
			assert.Equal(t, 3-applied, tc.extracted)
			mi, err := s.manifest(s.nsctx(ctx), loaded[0].Manifest)
			assert.NilError(t, err)
			assert.DeepEqual(t, readRootFS(t, s, s.nsctx(ctx), mi.parsed.RootFS.DiffIDs), want)
		})
	}
}

func TestImportArchiveChecksEveryLayerName(t *testing.T) {
	s, _ := newStore(t, "berth-test")
	ctx, done, err := s.WithLease(context.Background())
	assert.NilError(t, err)
	defer done(context.Background())
	// A layer stored under a name that is not "layer.tar" (here the v1 json's) is checked all the same.
	var layer bytes.Buffer
	assert.NilError(t, mkimage.WriteLayer(&layer, []mkimage.File{{Name: "../../evil", Body: []byte("x")}}))
	cfg, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []digest.Digest{digest.FromBytes(layer.Bytes())}}})
	assert.NilError(t, err)
	manifest := []byte(`[{"Config":"c.json","RepoTags":["evil:3"],"Layers":["d/json"]}]`)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, e := range []struct {
		name string
		b    []byte
	}{{"d/json", layer.Bytes()}, {"c.json", cfg}, {"manifest.json", manifest}} {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(e.b)
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	_, err = s.ImportArchive(ctx, &out)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.ErrorContains(t, err, "escapes the root filesystem")
}
