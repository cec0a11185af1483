package containers

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	eventtypes "github.com/berthd/berthd/api/types/events"
	volumetypes "github.com/berthd/berthd/api/types/volume"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/layer"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	ctdtest "github.com/berthd/berthd/libcontainerd/types/testutil"
	volumeservice "github.com/berthd/berthd/volume/service"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"gotest.tools/v3/assert"
)

// The service's dependencies other than containerd are faked by the small in-memory types below: the
// unit tests are about the service's own logic (state machine, restart policy, exec, restore), which the
// integration tests exercise with the real parts.

type fakeImages struct{}

func (fakeImages) RunConfig(ctx context.Context, ref string) (*image.RunConfig, error) {
	if ref != "busybox" {
		return nil, errdefs.ErrNotFound.WithMessage("No such image: " + ref)
	}
	return &image.RunConfig{ID: "sha256:b0", Cmd: []string{"sh"}, ChainID: "sha256:c0", OS: "linux"}, nil
}

// fakeLayers keeps the RW layer keys; mounts are empty directories.
type fakeLayers struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (l *fakeLayers) Prepare(ctx context.Context, key string, parent digest.Digest, labels map[string]string) ([]layer.Mount, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys[key] {
		return nil, errdefs.ErrAlreadyExists.WithMessage("layer " + key)
	}
	l.keys[key] = true
	return nil, nil
}

func (l *fakeLayers) Remove(ctx context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
	return nil
}

func (l *fakeLayers) has(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys[key]
}

func (l *fakeLayers) Mount(ctx context.Context, key, target string) error         { return nil }
func (l *fakeLayers) MountReadOnly(ctx context.Context, key, target string) error { return nil }
func (l *fakeLayers) Unmount(ctx context.Context, target string) error            { return nil }
func (l *fakeLayers) Size(ctx context.Context, key string) (int64, error)         { return 0, nil }
func (l *fakeLayers) RootFSSize(ctx context.Context, key string) (int64, error)   { return 0, nil }
func (l *fakeLayers) Mounts(ctx context.Context, key string) ([]layer.Mount, error) {
	return nil, nil
}
func (l *fakeLayers) Changes(ctx context.Context, key string, fn fs.ChangeFunc) error { return nil }
func (l *fakeLayers) WriteDiff(ctx context.Context, key string, w io.Writer, skip func(string) bool) error {
	return nil
}
func (l *fakeLayers) Snapshotter() string { return "overlayfs" }

// fakeVolumes is a local driver in memory: references and mounts are counted.
type fakeVolumes struct {
	mu     sync.Mutex
	dir    string
	refs   map[string]map[string]bool
	mounts map[string]int
	// restored counts LiveRestoreVolume calls: the mounts a restarted daemon took over.
	restored map[string]int
}

func (v *fakeVolumes) Create(ctx context.Context, name, driver string, opts ...volumeservice.CreateOption) (*volumetypes.Volume, error) {
	var cfg volumeservice.CreateConfig
	for _, o := range opts {
		o(&cfg)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if name == "" {
		name = newID()
	}
	if v.refs[name] == nil {
		v.refs[name] = map[string]bool{}
	}
	if cfg.Reference != "" {
		v.refs[name][cfg.Reference] = true
	}
	return &volumetypes.Volume{Name: name, Driver: "local", Mountpoint: v.dir + "/" + name}, nil
}

func (v *fakeVolumes) Get(ctx context.Context, name string, opts ...volumeservice.GetOption) (*volumetypes.Volume, error) {
	var cfg volumeservice.GetConfig
	for _, o := range opts {
		o(&cfg)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.refs[name] == nil {
		return nil, errdefs.ErrNotFound.WithMessage("no such volume")
	}
	if cfg.Reference != "" {
		v.refs[name][cfg.Reference] = true
	}
	return &volumetypes.Volume{Name: name, Driver: "local", Mountpoint: v.dir + "/" + name}, nil
}

func (v *fakeVolumes) Release(ctx context.Context, name, ref string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.refs[name], ref)
	return nil
}

func (v *fakeVolumes) Remove(ctx context.Context, name string, opts ...volumeservice.RemoveOption) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.refs[name]) > 0 {
		return errdefs.ErrConflict.WithMessage("volume is in use")
	}
	delete(v.refs, name)
	return nil
}

func (v *fakeVolumes) Mount(ctx context.Context, name, mountID string, attrs map[string]string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mounts[name]++
	p := v.dir + "/" + name
	return p, os.MkdirAll(p, 0o755)
}

func (v *fakeVolumes) Unmount(ctx context.Context, name, mountID string, attrs map[string]string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mounts[name]--
	return nil
}

func (v *fakeVolumes) LiveRestoreVolume(ctx context.Context, name, mountID string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.restored[name]++
	return nil
}

func (v *fakeVolumes) state(name string) (refs, mounts int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.refs[name]), v.mounts[name]
}

// eventLog records the container events the service emits.
type eventLog struct {
	mu   sync.Mutex
	list []string // "<id> <action>"
}

func (l *eventLog) Log(action string, typ eventtypes.Type, actor eventtypes.Actor) {
	l.mu.Lock()
	l.list = append(l.list, actor.ID+" "+action)
	l.mu.Unlock()
}

// actions lists the actions logged for container id, exec actions cut at the colon.
func (l *eventLog) actions(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.list {
		if a, ok := strings.CutPrefix(e, id+" "); ok {
			a, _, _ = strings.Cut(a, ":")
			out = append(out, a)
		}
	}
	return out
}

// harness is a container service on the fake runtime, with its data in a temporary directory.
type harness struct {
	t      *testing.T
	ctx    context.Context
	rt     *ctdtest.Runtime
	client ltypes.Client
	svc    *Service
	b      *Backend
	cfg    Config
	layers *fakeLayers
	vols   *fakeVolumes
	events *eventLog
}

func newHarness(t *testing.T, liveRestore bool) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{
		t: t, ctx: context.Background(), rt: ctdtest.NewRuntime(),
		cfg:    Config{Root: dir + "/containers", ExecRoot: dir + "/exec", LiveRestore: liveRestore},
		layers: &fakeLayers{keys: map[string]bool{}},
		vols:   &fakeVolumes{dir: dir + "/volumes", refs: map[string]map[string]bool{}, mounts: map[string]int{}, restored: map[string]int{}},
	}
	// The service reads a running container's files through /proc/<pid>/root: the test's own pid
	// gives it one to open.
	h.rt.SetPid(uint32(os.Getpid()))
	h.boot()
	t.Cleanup(func() {
		h.svc.Shutdown(context.Background())
		h.rt.WaitEvents()
	})
	return h
}

// boot starts a service (a daemon) on the harness' directories and runtime, as berthd's start-up does.
func (h *harness) boot() {
	h.t.Helper()
	h.events = &eventLog{}
	svc, err := New(h.cfg, fakeImages{}, h.layers, h.vols, h.events)
	assert.NilError(h.t, err)
	h.svc, h.b = svc, svc.Backend()
	h.client = h.rt.Connect(svc.ProcessEvent)
	svc.SetClient(h.client)
	assert.NilError(h.t, svc.Restore(h.ctx))
}

// crash ends the daemon without Shutdown (its client hears no more), runs meanwhile (if not nil) while
// no daemon runs, then boots a new one.
func (h *harness) crash(liveRestore bool, meanwhile func()) {
	h.t.Helper()
	h.client.Close()
	h.rt.WaitEvents()
	if meanwhile != nil {
		meanwhile()
	}
	h.cfg.LiveRestore = liveRestore
	h.boot()
}

func (h *harness) create(name string, hc *ctypes.HostConfig) string {
	h.t.Helper()
	if hc == nil {
		hc = &ctypes.HostConfig{}
	}
	r, err := h.b.ContainerCreate(h.ctx, name, &ctypes.CreateRequest{Config: ctypes.Config{Image: "busybox"}, HostConfig: hc})
	assert.NilError(h.t, err)
	return r.ID
}

func (h *harness) run(name string, hc *ctypes.HostConfig) string {
	h.t.Helper()
	id := h.create(name, hc)
	assert.NilError(h.t, h.b.ContainerStart(h.ctx, id))
	return id
}

func (h *harness) inspect(id string) *ctypes.InspectResponse {
	h.t.Helper()
	r, err := h.b.ContainerInspect(h.ctx, id, false)
	assert.NilError(h.t, err)
	return r
}

// waitFor waits until cond holds for the container's inspect; a wait, not a timing assertion: the
// deadline only keeps a broken test from hanging.
func (h *harness) waitFor(id, what string, cond func(*ctypes.InspectResponse) bool) *ctypes.InspectResponse {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := h.inspect(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("container %s never %s: state %+v", id[:12], what, *r.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) waitStatus(id, status string) *ctypes.InspectResponse {
	h.t.Helper()
	return h.waitFor(id, status, func(r *ctypes.InspectResponse) bool { return r.State.Status == status })
}

// exit ends the container's init with code and waits until the service handled the exit.
func (h *harness) exit(id string, code int) {
	h.t.Helper()
	assert.NilError(h.t, h.rt.Exit(id, code))
	h.rt.WaitEvents()
}

var errUnavailable = errdefs.ErrUnavailable.WithMessage("containerd is down")

func (v *fakeVolumes) restoredMounts(name string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.restored[name]
}
