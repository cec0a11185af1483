package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/layer"
	"github.com/berthd/berthd/libcontainerd/supervisor/testutil"
	"github.com/containerd/containerd"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

func newStore(t *testing.T, ns string) (*Store, *containerd.Client) {
	addr := testutil.StartContainerd(t)
	client, err := containerd.New(addr)
	assert.NilError(t, err)
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()
	sn, err := layer.SelectSnapshotter(ctx, client, "")
	assert.NilError(t, err)
	s, err := New(ctx, Config{Namespace: ns, Snapshotter: sn}, client)
	assert.NilError(t, err)
	return s, client
}

func importImage(t *testing.T, s *Store, files map[string]string, name string) *Image {
	ctx, done, err := s.WithLease(context.Background())
	assert.NilError(t, err)
	defer done(context.Background())
	l, err := s.WriteLayer(ctx, bytes.NewReader(tarOf(t, files)))
	assert.NilError(t, err)
	now := time.Now().UTC()
	cfg := image.Config{Created: &now, OS: "linux", Architecture: "amd64", RootFS: image.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.Digest}}}
	raw, _ := json.Marshal(cfg)
	m, err := s.WriteImage(ctx, raw, []ocispec.Descriptor{l})
	assert.NilError(t, err)
	assert.NilError(t, s.Unpack(ctx, m, nil))
	if name != "" {
		_, err = s.SetName(ctx, name, m)
	} else {
		err = s.AddDangling(ctx, m)
	}
	assert.NilError(t, err)
	img, err := s.Get(context.Background(), digest.FromBytes(raw).String())
	assert.NilError(t, err)
	return img
}

func TestStoreRoundTrip(t *testing.T) {
	s, client := newStore(t, "berth-test")
	ctx := context.Background()

	img := importImage(t, s, map[string]string{"hello": "world"}, "docker.io/library/x:latest")
	assert.DeepEqual(t, img.RepoTags(), []string{"x:latest"})
	got, err := s.Get(ctx, "x")
	assert.NilError(t, err)
	assert.Equal(t, got.ID, img.ID)
	got, err = s.Get(ctx, img.ID.Encoded()[:8])
	assert.NilError(t, err)
	assert.Equal(t, got.ID, img.ID)
	_, err = s.Get(ctx, "nope")
	assert.Check(t, errdefs.IsNotFound(err))
	assert.Check(t, s.Size(ctx, img) > 0)

	// Moving the tag leaves the first image dangling, not gone.
	img2 := importImage(t, s, map[string]string{"hello": "again"}, "docker.io/library/x:latest")
	imgs, err := s.List(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(imgs, 2))
	old, err := s.Get(ctx, img.ID.String())
	assert.NilError(t, err)
	assert.Check(t, !old.Named())

	// RW layer on top of the image survives the image's deletion (lease).
	ls := layer.New(client, layer.Config{Namespace: "berth-test", Snapshotter: s.Snapshotter()})
	mounts, err := ls.Prepare(ctx, "c1", img2.Config.ChainID(), nil)
	assert.NilError(t, err)
	assert.Check(t, len(mounts) > 0)
	_, err = ls.Prepare(ctx, "c1", img2.Config.ChainID(), nil)
	assert.Check(t, errdefs.IsAlreadyExists(err), "%v", err)
	_, err = ls.Prepare(ctx, "c2", "sha256:0000000000000000000000000000000000000000000000000000000000000000", nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	img2, err = s.Get(ctx, img2.ID.String())
	assert.NilError(t, err)
	assert.NilError(t, s.Delete(ctx, img2, true))
	ok, err := ls.Exists(ctx, "c1")
	assert.NilError(t, err)
	assert.Check(t, ok)
	_, err = ls.Size(ctx, "c1")
	assert.NilError(t, err)
	assert.NilError(t, ls.Remove(ctx, "c1"))
	assert.NilError(t, ls.Remove(ctx, "c1"))

	// Export, then import into another namespace.
	var buf bytes.Buffer
	assert.NilError(t, s.Export(ctx, &buf, []ExportItem{{Manifest: old.Manifest, Names: []string{"docker.io/library/y:1"}}}))
	s2, err := New(ctx, Config{Namespace: "berth-test2", Snapshotter: s.Snapshotter()}, client)
	assert.NilError(t, err)
	lctx, done, err := s2.WithLease(ctx)
	assert.NilError(t, err)
	loaded, err := s2.ImportArchive(lctx, bytes.NewReader(buf.Bytes()))
	assert.NilError(t, err)
	assert.Check(t, is.Len(loaded, 1))
	assert.DeepEqual(t, loaded[0].Names, []string{"docker.io/library/y:1"})
	assert.NilError(t, s2.Unpack(lctx, loaded[0].Manifest, nil))
	_, err = s2.SetName(lctx, loaded[0].Names[0], loaded[0].Manifest)
	assert.NilError(t, err)
	assert.NilError(t, done(ctx))
	y, err := s2.Get(ctx, "y:1")
	assert.NilError(t, err)
	assert.Equal(t, y.ID, old.ID)

	// Truncated archive and traversal entries are invalid arguments.
	_, err = s2.ImportArchive(lctx, bytes.NewReader(buf.Bytes()[:buf.Len()/2]))
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = s.WriteLayer(ctx, bytes.NewReader(tarOf(t, map[string]string{"../../etc/x": "y"})))
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = s.WriteLayer(ctx, bytes.NewReader([]byte("this is not a tar archive at all, really not")))
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
}
