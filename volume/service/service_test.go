package service

import (
	"context"
	"fmt"
	"github.com/berthd/berthd/volume"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	volumetypes "github.com/berthd/berthd/api/types/volume"
	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/volume/testutil"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type recorder struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorder) Log(action string, typ events.Type, actor events.Actor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var attrs []string
	for k, v := range actor.Attributes {
		attrs = append(attrs, k+"="+v)
	}
	sort.Strings(attrs)
	r.evs = append(r.evs, fmt.Sprintf("%s %s %s %s", typ, action, actor.ID, strings.Join(attrs, ",")))
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.evs...)
}

func newService(t *testing.T, root string, pg getter.PluginGetter, ev EventLogger) *VolumesService {
	t.Helper()
	cfg := Config{Root: root, ListTimeout: 300 * time.Millisecond, PluginAdapter: testutil.Adapter}
	if pg == nil {
		pg = testutil.NewFakeGetter()
	}
	s, err := NewVolumeService(context.Background(), cfg, pg, ev)
	assert.NilError(t, err)
	t.Cleanup(func() { s.Shutdown() })
	return s
}

func names(vols []*volumetypes.Volume) []string {
	out := []string{}
	for _, v := range vols {
		out = append(out, v.Name)
	}
	return out
}

func TestCreateAnonymous(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := newService(t, root, nil, nil)
	v, err := s.CreateVolume(ctx, volumetypes.CreateOptions{})
	assert.NilError(t, err)
	assert.Assert(t, regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(v.Name), v.Name)
	assert.DeepEqual(t, v.Labels, map[string]string{volumetypes.AnonymousLabel: ""})
	assert.Equal(t, v.Driver, "local")
	assert.Equal(t, v.Scope, "local")
	assert.Equal(t, v.Mountpoint, filepath.Join(root, "volumes", v.Name, "_data"))
	assert.Assert(t, v.Options == nil)
	_, err = time.Parse(time.RFC3339, v.CreatedAt)
	assert.NilError(t, err)
}

func TestCreateIdempotentAndConflict(t *testing.T) {
	ctx := context.Background()
	ev := &recorder{}
	s := newService(t, t.TempDir(), nil, ev)
	other := testutil.NewFakeDriver("other")
	s.Drivers().Register(other)

	v1, err := s.Create(ctx, "v1", "local", WithCreateLabel("a", "b"))
	assert.NilError(t, err)
	v2, err := s.Create(ctx, "v1", "local")
	assert.NilError(t, err)
	assert.DeepEqual(t, v1, v2)
	assert.DeepEqual(t, ev.list(), []string{"volume create v1 driver=local"})

	_, err = s.Create(ctx, "v1", "other")
	assert.Error(t, err, "create v1: driver 'local' already has volume 'v1': volume name must be unique")
	assert.Assert(t, errdefs.IsConflict(err))
	assert.Equal(t, other.Calls("Create"), 0)

	_, err = s.Create(ctx, "v2", "nosuchdriver")
	assert.Error(t, err, `create v2: error looking up volume plugin nosuchdriver: plugin "nosuchdriver" not found`)
	assert.Assert(t, errdefs.IsNotFound(err))

	// Without a driver the name is found wherever it is.
	_, err = other.Create(ctx, "elsewhere", nil)
	assert.NilError(t, err)
	v, err := s.Create(ctx, "elsewhere", "")
	assert.NilError(t, err)
	assert.Equal(t, v.Driver, "other")
}

func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := newService(t, root, nil, nil)
	for _, n := range []string{"a/b", "../../etc", "x", ".x"} {
		_, err := s.Create(ctx, n, "local")
		assert.Assert(t, errdefs.IsInvalidArgument(err), "%q: %v", n, err)
		assert.Assert(t, strings.HasPrefix(err.Error(), "create "+n+": "), err.Error())
	}
	_, err := s.Create(ctx, "opts", "local", WithCreateOptions(map[string]string{"bogus": "1"}))
	assert.Assert(t, errdefs.IsInvalidArgument(err))
	assert.ErrorContains(t, err, `create opts: invalid option: "bogus"`)
	entries, err := os.ReadDir(filepath.Join(root, "volumes"))
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 1, "only metadata.db")
}

func TestGetAndRemoveErrors(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	_, err := s.Inspect(ctx, "nope")
	assert.Error(t, err, "get nope: no such volume")
	assert.Assert(t, errdefs.IsNotFound(err))
	err = s.RemoveVolume(ctx, "nope", false)
	assert.Error(t, err, "get nope: no such volume")
	assert.Assert(t, errdefs.IsNotFound(err))
	assert.NilError(t, s.RemoveVolume(ctx, "nope", true))

	_, err = s.Create(ctx, "vv", "local")
	assert.NilError(t, err)
	_, err = s.Get(ctx, "vv", WithGetDriver("other"))
	assert.Assert(t, errdefs.IsConflict(err))
}

func TestReferences(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	_, err := s.Create(ctx, "held", "local", WithCreateReference("c1"))
	assert.NilError(t, err)
	_, err = s.Get(ctx, "held", WithGetReference("c2"))
	assert.NilError(t, err)
	_, err = s.Get(ctx, "held", WithGetReference("c2")) // same holder twice counts once
	assert.NilError(t, err)

	for _, force := range []bool{false, true} {
		err = s.RemoveVolume(ctx, "held", force)
		assert.Error(t, err, "remove held: volume is in use - [c1, c2]")
		assert.Assert(t, errdefs.IsConflict(err))
	}
	dangling := func() []string {
		vols, _, err := s.List(ctx, filters.NewArgs(filters.Arg("dangling", "true")))
		assert.NilError(t, err)
		return names(vols)
	}
	assert.DeepEqual(t, dangling(), []string{})

	assert.NilError(t, s.Release(ctx, "held", "c1"))
	assert.NilError(t, s.Release(ctx, "held", "c1")) // extra release: no negative count
	assert.NilError(t, s.Release(ctx, "held", "unknown"))
	assert.ErrorContains(t, s.RemoveVolume(ctx, "held", false), "volume is in use - [c2]")
	assert.NilError(t, s.Release(ctx, "held", "c2"))
	assert.DeepEqual(t, dangling(), []string{"held"})

	// A fresh reference after the count reached zero still protects the volume.
	_, err = s.Get(ctx, "held", WithGetReference("c3"))
	assert.NilError(t, err)
	assert.Assert(t, errdefs.IsConflict(s.RemoveVolume(ctx, "held", false)))
	assert.NilError(t, s.Release(ctx, "held", "c3"))
	assert.NilError(t, s.RemoveVolume(ctx, "held", false))
}

func TestListFilters(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	other := testutil.NewFakeDriver("other")
	s.Drivers().Register(other)
	mk := func(name, driver string, labels map[string]string, ref string) {
		_, err := s.Create(ctx, name, driver, WithCreateLabels(labels), WithCreateReference(ref))
		assert.NilError(t, err)
	}
	mk("alpha", "local", map[string]string{"env": "prod"}, "")
	mk("beta", "local", map[string]string{"env": "dev", "team": "x"}, "c1")
	mk("gamma", "other", nil, "")

	cases := []struct {
		f    filters.Args
		want []string
	}{
		{filters.NewArgs(), []string{"alpha", "beta", "gamma"}},
		{filters.NewArgs(filters.Arg("name", "alpha")), []string{"alpha"}},
		{filters.NewArgs(filters.Arg("name", "^[ab]")), []string{"alpha", "beta"}},
		{filters.NewArgs(filters.Arg("driver", "other")), []string{"gamma"}},
		{filters.NewArgs(filters.Arg("driver", "local")), []string{"alpha", "beta"}},
		{filters.NewArgs(filters.Arg("label", "env")), []string{"alpha", "beta"}},
		{filters.NewArgs(filters.Arg("label", "env=dev")), []string{"beta"}},
		{filters.NewArgs(filters.Arg("label", "env=dev"), filters.Arg("label", "team")), []string{"beta"}},
		{filters.NewArgs(filters.Arg("dangling", "true")), []string{"alpha", "gamma"}},
		{filters.NewArgs(filters.Arg("dangling", "1")), []string{"alpha", "gamma"}},
		{filters.NewArgs(filters.Arg("dangling", "false")), []string{"beta"}},
	}
	for _, c := range cases {
		vols, warnings, err := s.List(ctx, c.f)
		assert.NilError(t, err)
		assert.Assert(t, is.Len(warnings, 0))
		assert.DeepEqual(t, names(vols), c.want)
	}
	for _, f := range []filters.Args{
		filters.NewArgs(filters.Arg("bogus", "x")),
		filters.NewArgs(filters.Arg("dangling", "maybe")),
	} {
		_, _, err := s.List(ctx, f)
		assert.Assert(t, errdefs.IsInvalidArgument(err) || isInvalidParam(err), "%v", err)
	}
	vols, _, err := s.List(ctx, filters.NewArgs(filters.Arg("name", "beta")))
	assert.NilError(t, err)
	assert.DeepEqual(t, vols[0].Labels, map[string]string{"env": "dev", "team": "x"})
}

// Listings reuse what they rendered before, but a name removed and created again is listed as it is now.
func TestListAfterRecreate(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	labelOf := func() map[string]string {
		vols, _, err := s.List(ctx, filters.NewArgs())
		assert.NilError(t, err)
		assert.Assert(t, is.Len(vols, 1))
		return vols[0].Labels
	}
	_, err := s.Create(ctx, "vv", "local", WithCreateLabels(map[string]string{"gen": "1"}))
	assert.NilError(t, err)
	assert.DeepEqual(t, labelOf(), map[string]string{"gen": "1"})
	assert.DeepEqual(t, labelOf(), map[string]string{"gen": "1"})
	assert.NilError(t, s.Remove(ctx, "vv"))
	_, err = s.Create(ctx, "vv", "local", WithCreateLabels(map[string]string{"gen": "2"}))
	assert.NilError(t, err)
	assert.DeepEqual(t, labelOf(), map[string]string{"gen": "2"})
}

func isInvalidParam(err error) bool {
	_, ok := err.(interface{ InvalidParameter() })
	return ok
}

func TestListHungDriverAnswersWithWarning(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	hung := testutil.NewFakeDriver("hung")
	s.Drivers().Register(hung)
	_, err := s.Create(ctx, "onhung", "hung")
	assert.NilError(t, err)
	_, err = s.Create(ctx, "onlocal", "local")
	assert.NilError(t, err)
	// One hook for the whole test: the goroutine of a List that gave up may still be reading it.
	var ignoreCtx atomic.Bool
	block := make(chan struct{})
	defer close(block)
	hung.OnList = func(ctx context.Context) error {
		if ignoreCtx.Load() {
			<-block
			return nil
		}
		return testutil.Hang(ctx)
	}

	start := time.Now()
	vols, warnings, err := s.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Assert(t, time.Since(start) < 5*time.Second)
	assert.DeepEqual(t, names(vols), []string{"onhung", "onlocal"})
	assert.Equal(t, len(warnings), 1)
	assert.Assert(t, strings.HasPrefix(warnings[0], "list hung: "), warnings[0])

	// A driver that ignores its ctx entirely does not hold the answer either.
	ignoreCtx.Store(true)
	start = time.Now()
	_, warnings, err = s.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Assert(t, time.Since(start) < 5*time.Second)
	assert.Equal(t, len(warnings), 1)
}

func TestPruneSelection(t *testing.T) {
	ctx := context.Background()
	ev := &recorder{}
	s := newService(t, t.TempDir(), nil, ev)
	anon, err := s.Create(ctx, "", "local")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(anon.Mountpoint, "f"), make([]byte, 1000), 0o644))
	anonHeld, err := s.Create(ctx, "", "local", WithCreateReference("c1"))
	assert.NilError(t, err)
	anonLabeled, err := s.Create(ctx, "", "local", WithCreateLabel("keep", "yes"))
	assert.NilError(t, err)
	_, err = s.Create(ctx, "named", "local")
	assert.NilError(t, err)
	_, err = s.Create(ctx, "withopts", "local", WithCreateOptions(map[string]string{"type": "tmpfs", "device": "tmpfs"}))
	assert.NilError(t, err)

	rep, err := s.Prune(ctx, filters.NewArgs(filters.Arg("label!", "keep=yes")))
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.VolumesDeleted, []string{anon.Name})
	assert.Equal(t, rep.SpaceReclaimed, uint64(1000))

	rep, err = s.Prune(ctx, filters.NewArgs(filters.Arg("label", "keep")))
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.VolumesDeleted, []string{anonLabeled.Name})

	rep, err = s.Prune(ctx, filters.NewArgs(filters.Arg("all", "true")))
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.VolumesDeleted, []string{"named"})

	vols, _, err := s.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	want := []string{anonHeld.Name, "withopts"}
	sort.Strings(want)
	assert.DeepEqual(t, names(vols), want)

	_, err = s.Prune(ctx, filters.NewArgs(filters.Arg("dangling", "true")))
	assert.Assert(t, isInvalidParam(err), "%v", err)

	s.pruning.Store(true)
	_, err = s.Prune(ctx, filters.NewArgs())
	assert.Error(t, err, "a prune operation is already running")
	assert.Assert(t, errdefs.IsConflict(err))
	s.pruning.Store(false)

	evs := ev.list()
	assert.Assert(t, is.Contains(evs, "volume destroy named driver=local"))
	assert.Assert(t, is.Contains(evs, "volume prune  reclaimed=1000"))
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	ev := &recorder{}
	s := newService(t, t.TempDir(), nil, ev)
	_, err := s.Create(ctx, "ev", "local")
	assert.NilError(t, err)
	p, err := s.Mount(ctx, "ev", "m1", map[string]string{"container": "c1", "destination": "/data"})
	assert.NilError(t, err)
	assert.Assert(t, strings.HasSuffix(p, "/ev/_data"))
	assert.NilError(t, s.Unmount(ctx, "ev", "m1", map[string]string{"container": "c1"}))
	assert.NilError(t, s.RemoveVolume(ctx, "ev", false))
	assert.DeepEqual(t, ev.list(), []string{
		"volume create ev driver=local",
		"volume mount ev container=c1,destination=/data,driver=local",
		"volume unmount ev container=c1,driver=local",
		"volume destroy ev driver=local",
	})
}

func TestLocalVolumesSize(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	v, err := s.Create(ctx, "sized", "local", WithCreateReference("c1"))
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(v.Mountpoint, "a"), make([]byte, 300), 0o644))
	assert.NilError(t, os.Link(filepath.Join(v.Mountpoint, "a"), filepath.Join(v.Mountpoint, "b")))
	_, err = s.Create(ctx, "opt", "local", WithCreateOptions(map[string]string{"type": "tmpfs", "device": "tmpfs"}))
	assert.NilError(t, err)
	vols, err := s.LocalVolumesSize(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 1)
	assert.DeepEqual(t, *vols[0].UsageData, volumetypes.UsageData{Size: 300, RefCount: 1})
}

// lazyDriver's volumes know their mountpoint only when asked, like plugin volumes (/VolumeDriver.Path).
type lazyDriver struct {
	*testutil.FakeDriver
	asked *int
}

type lazyPathVolume struct {
	volume.Volume
	asked *int
}

func (v lazyPathVolume) Path() string { return "" }

func (v lazyPathVolume) PathContext(context.Context) (string, error) {
	*v.asked++
	return "/resolved/" + v.Name(), nil
}

func (d *lazyDriver) wrap(v volume.Volume, err error) (volume.Volume, error) {
	if err != nil {
		return nil, err
	}
	return lazyPathVolume{Volume: v, asked: d.asked}, nil
}

func (d *lazyDriver) Create(ctx context.Context, name string, opts map[string]string) (volume.Volume, error) {
	return d.wrap(d.FakeDriver.Create(ctx, name, opts))
}

func (d *lazyDriver) Get(ctx context.Context, name string) (volume.Volume, error) {
	return d.wrap(d.FakeDriver.Get(ctx, name))
}

func (d *lazyDriver) List(ctx context.Context) ([]volume.Volume, error) {
	vs, err := d.FakeDriver.List(ctx)
	for i := range vs {
		vs[i], _ = d.wrap(vs[i], nil)
	}
	return vs, err
}

func TestInspectResolvesMountpointListDoesNot(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	asked := 0
	s.Drivers().Register(&lazyDriver{FakeDriver: testutil.NewFakeDriver("lazy"), asked: &asked})
	_, err := s.Create(ctx, "lv", "lazy")
	assert.NilError(t, err)

	vols, _, err := s.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, vols[0].Mountpoint, "")
	assert.Equal(t, asked, 0, "ls never asks the driver for a path")

	v, err := s.Inspect(ctx, "lv")
	assert.NilError(t, err)
	assert.Equal(t, v.Mountpoint, "/resolved/lv")
	assert.Equal(t, asked, 1)
}

// Inspect asks the driver every time, as dockerd does: the driver's Status is shown, a driver that cannot
// answer fails the inspect naming itself (a dead plugin's volume must not look healthy from the cache), and
// a volume the driver lost is forgotten.
func TestInspectAsksTheDriver(t *testing.T) {
	ctx := context.Background()
	s := newService(t, t.TempDir(), nil, nil)
	d := testutil.NewFakeDriver("fake")
	s.Drivers().Register(d)
	_, err := s.Create(ctx, "fv", "fake")
	assert.NilError(t, err)
	before := d.Calls("Get")

	v, err := s.Inspect(ctx, "fv")
	assert.NilError(t, err)
	assert.DeepEqual(t, v.Status, map[string]any{"fake": true})
	assert.Equal(t, d.Calls("Get"), before+1)

	_, _, err = s.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, d.Calls("Get"), before+1, "ls does not ask for each volume")

	d.OnGet = func(context.Context, string) error {
		return errdefs.ErrUnavailable.WithMessage(`plugin "fake" is unavailable: connection refused`)
	}
	_, err = s.Inspect(ctx, "fv")
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Error(t, err, `get fv: error while checking if volume "fv" exists in driver "fake": plugin "fake" is unavailable: connection refused`)

	d.OnGet = func(context.Context, string) error { return errdefs.ErrNotFound.WithMessage("no such volume") }
	_, err = s.Inspect(ctx, "fv")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Error(t, err, "get fv: no such volume")
	_, cached := s.vs.cached("fv")
	assert.Check(t, !cached, "the lost volume is forgotten")
}

func TestRefusesNoPluginGetter(t *testing.T) {
	_, err := NewVolumeService(context.Background(), Config{Root: t.TempDir()}, nil, nil)
	assert.ErrorContains(t, err, "no plugin getter")
}
