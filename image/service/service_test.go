package service

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	imagerouter "github.com/berthd/berthd/api/server/router/image"
	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/distribution"
	"github.com/berthd/berthd/image/store"
	"github.com/berthd/berthd/layer"
	"github.com/berthd/berthd/libcontainerd/supervisor/testutil"
	"github.com/containerd/containerd"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type recorder struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorder) Log(action string, typ eventtypes.Type, actor eventtypes.Actor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, action+" "+actor.Attributes["name"])
}

func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.evs {
		if e == s {
			return true
		}
	}
	return false
}

type usage map[digest.Digest][2][]string

func (u usage) ImageUsage(ctx context.Context, id digest.Digest) ([]string, []string) {
	v := u[id]
	return v[0], v[1]
}

func rootfsTar(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, _ = tw.Write([]byte(body))
	}
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

func newService(t *testing.T) (*Service, *recorder, *containerd.Client) {
	addr := testutil.StartContainerd(t)
	client, err := containerd.New(addr)
	assert.NilError(t, err)
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()
	sn, err := layer.SelectSnapshotter(ctx, client, "")
	assert.NilError(t, err)
	st, err := store.New(ctx, store.Config{Namespace: "berth", Snapshotter: sn}, client)
	assert.NilError(t, err)
	rec := &recorder{}
	svc, err := New(ctx, Config{DockerVersion: "berthd-test"}, st, distribution.New(client, distribution.Config{Namespace: "berth"}), rec)
	assert.NilError(t, err)
	return svc, rec, client
}

func TestImageLifecycle(t *testing.T) {
	svc, rec, _ := newService(t)
	ctx := context.Background()

	var msgs []imagetypes.JSONMessage
	id, err := svc.ImportImage(ctx, bytes.NewReader(rootfsTar(t, map[string]string{"bin/hello": "#!/bin/sh\necho hi\n"})), "-", "busybox", "", "", []string{`CMD ["/bin/hello"]`, "ENV A=1"}, "", func(m imagetypes.JSONMessage) { msgs = append(msgs, m) })
	assert.NilError(t, err)
	assert.Check(t, is.Len(msgs, 1))
	assert.Equal(t, msgs[0].Status, id)
	assert.Check(t, rec.has("import busybox:latest"))

	rc, err := svc.RunConfig(ctx, "busybox")
	assert.NilError(t, err)
	assert.DeepEqual(t, rc.Cmd, []string{"/bin/hello"})
	assert.DeepEqual(t, rc.Env, []string{"A=1"})
	assert.Check(t, rc.ChainID != "")
	_, err = svc.RunConfig(ctx, "nope")
	assert.Check(t, errdefs.IsNotFound(err))

	// Bad inputs are 400-class and leave nothing behind.
	_, err = svc.ImportImage(ctx, strings.NewReader("garbage garbage garbage"), "-", "bad", "", "", nil, "", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = svc.ImportImage(ctx, bytes.NewReader(rootfsTar(t, map[string]string{"../escape": "x"})), "-", "bad", "", "", nil, "", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = svc.ImportImage(ctx, bytes.NewReader(rootfsTar(t, nil)), "-", "UPPER", "", "", nil, "", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = svc.ImportImage(ctx, bytes.NewReader(rootfsTar(t, nil)), "-", "x", "", "", []string{"RUN true"}, "", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)

	assert.NilError(t, svc.TagImage(ctx, "busybox", "localhost:5000/bb", "v1"))
	assert.Check(t, errdefs.IsInvalidArgument(svc.TagImage(ctx, "busybox", "UPPER", "")))
	assert.Check(t, errdefs.IsNotFound(svc.TagImage(ctx, "nope", "x", "")))
	list, err := svc.Images(ctx, ListOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 1))
	assert.DeepEqual(t, list[0].RepoTags, []string{"busybox:latest", "localhost:5000/bb:v1"})
	assert.Check(t, list[0].Size > 0)

	insp, err := svc.ImageInspect(ctx, id)
	assert.NilError(t, err)
	assert.Equal(t, insp.Os, "linux")
	assert.Equal(t, insp.Comment, "Imported from -")
	hist, err := svc.ImageHistory(ctx, "busybox")
	assert.NilError(t, err)
	assert.Check(t, is.Len(hist, 1))
	assert.Equal(t, hist[0].ID, id)

	// Save, delete, load back.
	var buf bytes.Buffer
	assert.NilError(t, svc.ExportImages(ctx, []string{"busybox", "localhost:5000/bb:v1"}, &buf))
	assert.Check(t, errdefs.IsNotFound(svc.ExportImages(ctx, []string{"nope"}, &bytes.Buffer{})))

	// Delete by ID with two repositories needs force.
	_, err = svc.ImageDelete(ctx, id, false, false)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	// Untag one name: image stays.
	res, err := svc.ImageDelete(ctx, "localhost:5000/bb:v1", false, false)
	assert.NilError(t, err)
	assert.DeepEqual(t, res, []imagetypes.DeleteResponse{{Untagged: "localhost:5000/bb:v1"}})
	// A stopped container blocks deleting the last name unless forced.
	svc.SetContainerUsage(usage{digest.Digest(id): {nil, {"c0ffee0123456789"}}})
	_, err = svc.ImageDelete(ctx, "busybox", false, false)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	svc.SetContainerUsage(usage{digest.Digest(id): {{"c0ffee0123456789"}, nil}})
	_, err = svc.ImageDelete(ctx, id, true, false)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.ErrorContains(t, err, "cannot be forced")
	svc.SetContainerUsage(nil)
	res, err = svc.ImageDelete(ctx, "busybox", false, false)
	assert.NilError(t, err)
	assert.DeepEqual(t, res, []imagetypes.DeleteResponse{{Untagged: "busybox:latest"}, {Deleted: id}})
	assert.Check(t, rec.has("delete "))

	var loadMsgs []string
	assert.NilError(t, svc.LoadImage(ctx, bytes.NewReader(buf.Bytes()), true, func(m imagetypes.JSONMessage) { loadMsgs = append(loadMsgs, m.Stream) }))
	assert.DeepEqual(t, loadMsgs, []string{"Loaded image: busybox:latest\n", "Loaded image: localhost:5000/bb:v1\n"})
	insp2, err := svc.ImageInspect(ctx, "localhost:5000/bb:v1")
	assert.NilError(t, err)
	assert.Equal(t, insp2.ID, id)
	err = svc.LoadImage(ctx, bytes.NewReader(buf.Bytes()[:buf.Len()/3]), true, nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)

	// Re-importing to the same tag leaves the old image dangling; prune removes it.
	id2, err := svc.ImportImage(ctx, bytes.NewReader(rootfsTar(t, map[string]string{"other": "x"})), "-", "busybox", "latest", "", nil, "", nil)
	assert.NilError(t, err)
	dangling, err := svc.Images(ctx, ListOptions{Filters: filters.NewArgs(filters.Arg("dangling", "true"))})
	assert.NilError(t, err)
	assert.Check(t, is.Len(dangling, 0)) // still tagged as localhost:5000/bb:v1
	_, err = svc.ImageDelete(ctx, "localhost:5000/bb:v1", false, false)
	assert.NilError(t, err)
	id3, err := svc.ImportImage(ctx, bytes.NewReader(rootfsTar(t, map[string]string{"third": "x"})), "-", "busybox", "latest", "", nil, "", nil)
	assert.NilError(t, err)
	dangling, err = svc.Images(ctx, ListOptions{Filters: filters.NewArgs(filters.Arg("dangling", "true"))})
	assert.NilError(t, err)
	assert.Check(t, is.Len(dangling, 1))
	assert.Equal(t, dangling[0].ID, id2)
	refs, err := svc.Images(ctx, ListOptions{Filters: filters.NewArgs(filters.Arg("reference", "busy*"))})
	assert.NilError(t, err)
	assert.Check(t, is.Len(refs, 1))
	assert.Equal(t, refs[0].ID, id3)

	rep, err := svc.ImagesPrune(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.ImagesDeleted, []imagetypes.DeleteResponse{{Deleted: id2}})
	rep, err = svc.ImagesPrune(ctx, filters.NewArgs(filters.Arg("dangling", "false")))
	assert.NilError(t, err)
	assert.Check(t, is.Len(rep.ImagesDeleted, 2))
	assert.Equal(t, svc.CountImages(ctx), 0)
}

var _ imagerouter.Backend = (*Service)(nil)

func TestImportFromURL(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	body := rootfsTar(t, map[string]string{"f": "x"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rootfs.tar" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	id, err := svc.ImportImage(ctx, nil, srv.URL+"/rootfs.tar", "fromurl", "", "", nil, "", nil)
	assert.NilError(t, err)
	insp, err := svc.ImageInspect(ctx, "fromurl")
	assert.NilError(t, err)
	assert.Equal(t, insp.ID, id)
	assert.Equal(t, insp.Comment, "Imported from "+srv.URL+"/rootfs.tar")
	_, err = svc.ImportImage(ctx, nil, srv.URL+"/missing", "x", "", "", nil, "", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = svc.ImportImage(ctx, nil, "file:///etc/passwd", "x", "", "", nil, "", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
}
