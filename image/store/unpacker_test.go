package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/mkimage"
	"github.com/berthd/berthd/image"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
)

// pullImage stores the config and manifest of a three-layer image (the middle layer gzipped) and returns
// the manifest, the layer blobs and descriptors, and the diff IDs.
func pullImage(t *testing.T, s *Store, ctx context.Context) (ocispec.Descriptor, [][]byte, []ocispec.Descriptor, []digest.Digest) {
	files := [][]mkimage.File{
		{{Name: "a/", Type: tar.TypeDir}, {Name: "a/keep", Body: []byte("1")}, {Name: "a/gone", Body: []byte("1")}},
		{{Name: "a/", Type: tar.TypeDir}, {Name: "a/keep", Body: []byte("2")}, {Name: "a/.wh.gone"}, {Name: "big", Size: 3 << 20, Seed: 1}},
		{{Name: "c", Body: []byte("3")}},
	}
	var blobs [][]byte
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i, f := range files {
		var buf bytes.Buffer
		assert.NilError(t, mkimage.WriteLayer(&buf, f))
		diffIDs = append(diffIDs, digest.FromBytes(buf.Bytes()))
		mt := ocispec.MediaTypeImageLayer
		if i == 1 {
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			_, err := zw.Write(buf.Bytes())
			assert.NilError(t, err)
			assert.NilError(t, zw.Close())
			buf = gz
			mt = ocispec.MediaTypeImageLayerGzip
		}
		blobs = append(blobs, buf.Bytes())
		descs = append(descs, ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(buf.Bytes()), Size: int64(buf.Len())})
	}
	now := time.Now().UTC()
	cfg := image.Config{Created: &now, OS: "linux", Architecture: "amd64", RootFS: image.RootFS{Type: "layers", DiffIDs: diffIDs}}
	raw, err := json.Marshal(cfg)
	assert.NilError(t, err)
	m, err := s.WriteImage(ctx, raw, descs)
	assert.NilError(t, err)
	return m, blobs, descs, diffIDs
}

// fetch writes the blobs through ing the way a pull does: side by side, the top one started first.
func fetch(t *testing.T, ctx context.Context, ing content.Ingester, blobs [][]byte, descs []ocispec.Descriptor) {
	var wg sync.WaitGroup
	errs := make([]error, len(blobs))
	for i := len(blobs) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// A slow reader, so the layers are in flight together.
			r := io.MultiReader(bytes.NewReader(blobs[i][:len(blobs[i])/2]), slowReader{}, bytes.NewReader(blobs[i][len(blobs[i])/2:]))
			errs[i] = content.WriteBlob(ctx, ing, fmt.Sprintf("layer-%d-%s", i, randomID()), r, descs[i])
		}(i)
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	for _, err := range errs {
		assert.NilError(t, err)
	}
}

type slowReader struct{}

func (slowReader) Read([]byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	return 0, io.EOF
}

func TestLayerUnpacker(t *testing.T) {
	want := map[string]string{"a": "dir", "a/keep": "2", "big": string(mkimageData(t, 3<<20, 1)), "c": "3"}
	for _, tc := range []struct {
		name   string
		stored bool // the bottom layer's blob is in the content store already (not its snapshot)
	}{
		{name: "all fetched"},
		{name: "bottom blob stored", stored: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, "berth-test")
			ctx, done, err := s.WithLease(context.Background())
			assert.NilError(t, err)
			defer done(context.Background())
			m, blobs, descs, diffIDs := pullImage(t, s, ctx)
			if tc.stored {
				assert.NilError(t, content.WriteBlob(ctx, s.ContentStore(), "pre", bytes.NewReader(blobs[0]), descs[0]))
				blobs, descs = blobs[1:], descs[1:]
			}

			u := s.PullUnpacker()
			ing, finish, err := u.Ingest(ctx, m)
			assert.NilError(t, err)
			assert.Assert(t, ing != nil)
			fetch(t, ctx, ing, blobs, descs)
			finish()
			for _, d := range descs {
				assert.Check(t, u.Applied(d.Digest) == !tc.stored, "%s", d.Digest)
			}

			var applied int
			assert.NilError(t, s.Unpack(ctx, m, func(_ ocispec.Descriptor, done, a bool) {
				if done && a {
					applied++
				}
			}))
			if tc.stored {
				assert.Equal(t, applied, 3)
			} else {
				assert.Equal(t, applied, 0)
			}
			assert.DeepEqual(t, readRootFS(t, s, s.nsctx(ctx), diffIDs), want)
			_, err = s.sn().Stat(s.nsctx(ctx), identity.ChainID(diffIDs).String())
			assert.NilError(t, err)
		})
	}
}

func mkimageData(t *testing.T, size int64, seed int64) []byte {
	var buf bytes.Buffer
	assert.NilError(t, mkimage.WriteLayer(&buf, []mkimage.File{{Name: "x", Size: size, Seed: seed}}))
	tr := tar.NewReader(&buf)
	_, err := tr.Next()
	assert.NilError(t, err)
	b, err := io.ReadAll(tr)
	assert.NilError(t, err)
	return b
}

func TestBufPipe(t *testing.T) {
	p := newBufPipe(3 << 20)
	data := bytes.Repeat([]byte("abcdefgh"), 5<<20/8+3)
	var wrote sync.WaitGroup
	wrote.Add(1)
	go func() {
		defer wrote.Done()
		for off := 0; off < len(data); off += 700_000 {
			_, err := p.Write(data[off:min(off+700_000, len(data))])
			assert.Check(t, err)
		}
		p.CloseWithError(nil)
	}()
	// The writer stops at the limit until something is read.
	time.Sleep(50 * time.Millisecond)
	p.mu.Lock()
	held := p.n
	p.mu.Unlock()
	assert.Check(t, held >= 3<<20 && held < 3<<20+pipeChunk, "%d held", held)
	got, err := io.ReadAll(p)
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(got, data))
	wrote.Wait()

	// A reader that gives up releases the writer.
	p = newBufPipe(1 << 20)
	_, err = p.Write(make([]byte, 1<<20))
	assert.NilError(t, err)
	errc := make(chan error, 1)
	go func() { _, err := p.Write([]byte("x")); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	p.CloseRead()
	assert.Check(t, <-errc != nil)
	p = newBufPipe(1 << 20)
	p.CloseWithError(io.ErrUnexpectedEOF)
	_, err = p.Read(make([]byte, 10))
	assert.Equal(t, err, io.ErrUnexpectedEOF)
}

func TestUnpackRefusesBadLayers(t *testing.T) {
	s, _ := newStore(t, "berth-test")
	ctx, done, err := s.WithLease(context.Background())
	assert.NilError(t, err)
	defer done(context.Background())
	var good bytes.Buffer
	assert.NilError(t, mkimage.WriteLayer(&good, []mkimage.File{{Name: "f", Body: []byte("x")}}))
	for _, tc := range []struct {
		name   string
		blob   []byte
		diffID digest.Digest
		msg    string
	}{
		{name: "wrong diff ID", blob: good.Bytes(), diffID: digest.FromString("something else"), msg: "wrong diff id"},
		{name: "not a tar", blob: bytes.Repeat([]byte("not a tar "), 200), diffID: digest.FromBytes(bytes.Repeat([]byte("not a tar "), 200)), msg: "unpack layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(tc.blob), Size: int64(len(tc.blob))}
			assert.NilError(t, content.WriteBlob(ctx, s.ContentStore(), "l-"+randomID(), bytes.NewReader(tc.blob), desc))
			now := time.Now().UTC()
			raw, err := json.Marshal(image.Config{Created: &now, OS: "linux", Architecture: "amd64", RootFS: image.RootFS{Type: "layers", DiffIDs: []digest.Digest{tc.diffID}}})
			assert.NilError(t, err)
			m, err := s.WriteImage(ctx, raw, []ocispec.Descriptor{desc})
			assert.NilError(t, err)
			err = s.Unpack(ctx, m, nil)
			assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
			assert.ErrorContains(t, err, tc.msg)
			var n int
			assert.NilError(t, s.sn().Walk(s.nsctx(ctx), func(context.Context, snapshots.Info) error { n++; return nil }))
			assert.Equal(t, n, 0)
		})
	}
}
