package manager

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/plugin/executor/testutil"
	"github.com/berthd/berthd/plugin/getter"
	v2 "github.com/berthd/berthd/plugin/v2"
)

const testConfig = `{
  "description": "test",
  "interface": {"types": ["docker.volumedriver/1.0"], "socket": "t.sock"},
  "entrypoint": ["/bin/plugin"],
  "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"}]
}`

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Log(action string, typ eventtypes.Type, actor eventtypes.Actor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, string(typ)+" "+action+" "+actor.Attributes["name"])
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

type entry struct {
	name, body, link string
	typ              byte
}

func makeTar(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o755, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		assert.NilError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			assert.NilError(t, err)
		}
	}
	assert.NilError(t, tw.Close())
	return &buf
}

func pluginTar(t *testing.T) *bytes.Buffer {
	return makeTar(t,
		entry{name: "config.json", body: testConfig},
		entry{name: "rootfs/", typ: tar.TypeDir},
		entry{name: "rootfs/bin/plugin", body: "#!/bin/sh\n"},
		entry{name: "rootfs/bin/link", typ: tar.TypeSymlink, link: "plugin"},
	)
}

type env struct {
	root, sockets string
	fake          *testutil.Executor
	ev            *recorder
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{root: filepath.Join(dir, "plugins"), sockets: filepath.Join(dir, "s"), fake: testutil.New("t.sock"), ev: &recorder{}}
}

func (e *env) open(t *testing.T) *Manager {
	t.Helper()
	m, err := New(context.Background(), Config{Root: e.root, SocketRoot: e.sockets, SocketWait: 3 * time.Second, StopTimeout: time.Second}, e.fake.Factory, e.ev)
	assert.NilError(t, err)
	return m
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()

	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	err := m.Create(ctx, "vol:latest", pluginTar(t))
	assert.Check(t, errdefs.IsConflict(err), err)
	assert.ErrorContains(t, err, "plugin vol:latest already exists")

	p, err := m.Inspect(ctx, "vol")
	assert.NilError(t, err)
	assert.Equal(t, p.Name, "vol:latest")
	assert.Equal(t, p.PluginReference, "docker.io/library/vol:latest")
	assert.Check(t, !p.Enabled)
	assert.DeepEqual(t, p.Settings.Env, []string{"DEBUG=0"})
	assert.Equal(t, p.Config.Interface.Socket, "t.sock")
	b, err := os.ReadFile(filepath.Join(e.root, p.ID, "rootfs", "bin", "plugin"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "#!/bin/sh\n")
	link, err := os.Readlink(filepath.Join(e.root, p.ID, "rootfs", "bin", "link"))
	assert.NilError(t, err)
	assert.Equal(t, link, "plugin")
	fi, err := os.Stat(filepath.Join(e.root, p.ID, "config.json"))
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o600))

	// Names: ID, ID prefix, reference.
	for _, n := range []string{p.ID, p.ID[:8], "vol:latest", "docker.io/library/vol"} {
		got, err := m.Inspect(ctx, n)
		assert.NilError(t, err, n)
		assert.Equal(t, got.ID, p.ID)
	}
	_, err = m.Inspect(ctx, "other")
	assert.Check(t, errdefs.IsNotFound(err))
	assert.Error(t, err, `plugin "other" not found`)

	// Disabled: the store's lookup is a conflict, not a fallback.
	_, err = m.Index().Lookup(ctx, "vol", getter.VolumeDriver)
	assert.Check(t, errdefs.IsConflict(err), err)
	_, err = m.Index().Lookup(ctx, "nope", getter.VolumeDriver)
	assert.Check(t, errdefs.IsNotFound(err), err)

	assert.NilError(t, m.Set(ctx, "vol", []string{"DEBUG=1"}))
	assert.NilError(t, m.Enable(ctx, "vol", 30))
	assert.Check(t, errdefs.IsConflict(m.Enable(ctx, "vol", 30)))
	assert.Equal(t, m.Set(ctx, "vol", []string{"DEBUG=2"}), v2.ErrActive)
	spec := e.fake.Spec(p.ID)
	assert.Check(t, is.Contains(spec.Process.Env, "DEBUG=1"))
	assert.Equal(t, spec.Root.Path, filepath.Join(e.root, p.ID, "rootfs"))

	list, err := m.List(ctx, filters.NewArgs(filters.Arg("enabled", "true"), filters.Arg("capability", "volumedriver")))
	assert.NilError(t, err)
	assert.Equal(t, len(list), 1)
	list, err = m.List(ctx, filters.NewArgs(filters.Arg("capability", "authz")))
	assert.NilError(t, err)
	assert.Equal(t, len(list), 0)
	_, err = m.List(ctx, filters.NewArgs(filters.Arg("enabled", "maybe")))
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, err = m.List(ctx, filters.NewArgs(filters.Arg("bogus", "1")))
	assert.Check(t, err != nil)

	// References from volumes block disable and remove.
	cp, err := m.Index().Acquire(ctx, "vol", "VolumeDriver")
	assert.NilError(t, err)
	assert.Check(t, !cp.IsV1())
	_, err = m.Index().Lookup(ctx, "vol", "authz")
	assert.ErrorContains(t, err, "does not provide")
	all, err := m.Index().GetAllByCap(ctx, getter.VolumeDriver)
	assert.NilError(t, err)
	assert.Equal(t, len(all), 1)
	err = m.Disable(ctx, "vol", false)
	assert.Check(t, errdefs.IsConflict(err))
	assert.ErrorContains(t, err, "is in use")
	err = m.Remove(ctx, "vol", false)
	assert.ErrorContains(t, err, "is in use")
	assert.NilError(t, m.Index().Release(ctx, "vol", "VolumeDriver"))

	err = m.Remove(ctx, "vol", false)
	assert.ErrorContains(t, err, "is enabled")
	assert.NilError(t, m.Disable(ctx, "vol", false))
	running, _ := e.fake.IsRunning(ctx, p.ID)
	assert.Check(t, !running)
	assert.Check(t, errdefs.IsConflict(m.Disable(ctx, "vol", false)))
	assert.NilError(t, m.Remove(ctx, "vol", false))
	_, err = os.Stat(filepath.Join(e.root, p.ID))
	assert.Check(t, os.IsNotExist(err))
	list, err = m.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, len(list), 0)

	assert.DeepEqual(t, e.ev.all(), []string{
		"plugin create vol:latest", "plugin enable vol:latest", "plugin disable vol:latest", "plugin remove vol:latest",
	})
}

func TestForceRemoveInUse(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	assert.NilError(t, m.Enable(ctx, "vol", 0))
	_, err := m.Index().Acquire(ctx, "vol", getter.VolumeDriver)
	assert.NilError(t, err)
	assert.NilError(t, m.Remove(ctx, "vol", true))
	_, err = m.Inspect(ctx, "vol")
	assert.Check(t, errdefs.IsNotFound(err))
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	assert.NilError(t, m.Create(ctx, "on", pluginTar(t)))
	assert.NilError(t, m.Create(ctx, "off", pluginTar(t)))
	assert.NilError(t, m.Set(ctx, "off", []string{"DEBUG=7"}))
	assert.NilError(t, m.Enable(ctx, "on", 12))
	on, _ := m.Inspect(ctx, "on")
	off, _ := m.Inspect(ctx, "off")
	assert.NilError(t, m.Shutdown(ctx))
	running, _ := e.fake.IsRunning(ctx, on.ID)
	assert.Check(t, !running, "shutdown without live-restore stops plugins")

	// Leftovers: a broken entry (quarantined), a half-removed plugin (deleted), stray files (ignored).
	broken := filepath.Join(e.root, strings.Repeat("c", 64))
	assert.NilError(t, os.MkdirAll(broken, 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(broken, "config.json"), []byte("{not json"), 0o600))
	noCfg := filepath.Join(e.root, strings.Repeat("d", 64))
	assert.NilError(t, os.MkdirAll(noCfg, 0o700))
	removing := filepath.Join(e.root, strings.Repeat("e", 64)+"-removing")
	assert.NilError(t, os.MkdirAll(filepath.Join(removing, "rootfs"), 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(e.root, "stray"), nil, 0o600))

	m2 := e.open(t)
	got, err := m2.Inspect(ctx, "on")
	assert.NilError(t, err)
	assert.Check(t, got.Enabled, "a plugin enabled at shutdown is started again")
	assert.Equal(t, e.fake.Creates(on.ID), 2)
	running, _ = e.fake.IsRunning(ctx, on.ID)
	assert.Check(t, running)
	cp, err := m2.Index().Lookup(ctx, "on", getter.VolumeDriver)
	assert.NilError(t, err)
	assert.Check(t, cp.(*v2.Plugin).Timeout() == 12*time.Second)

	got, err = m2.Inspect(ctx, "off")
	assert.NilError(t, err)
	assert.Check(t, !got.Enabled)
	assert.DeepEqual(t, got.Settings.Env, []string{"DEBUG=7"})
	assert.DeepEqual(t, got.Config, off.Config)
	assert.Equal(t, e.fake.Creates(off.ID), 0)

	for _, gone := range []string{broken, noCfg, removing} {
		_, err := os.Stat(gone)
		assert.Check(t, os.IsNotExist(err), gone)
	}
	q, err := os.ReadDir(filepath.Join(e.root, "quarantine"))
	assert.NilError(t, err)
	assert.Equal(t, len(q), 2)
	list, err := m2.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, len(list), 2)
}

func TestLiveRestoreReattaches(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := Config{Root: e.root, SocketRoot: e.sockets, SocketWait: 3 * time.Second, LiveRestore: func() bool { return true }}
	m, err := New(ctx, cfg, e.fake.Factory, e.ev)
	assert.NilError(t, err)
	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	assert.NilError(t, m.Enable(ctx, "vol", 0))
	p, _ := m.Inspect(ctx, "vol")
	assert.NilError(t, m.Shutdown(ctx))
	running, _ := e.fake.IsRunning(ctx, p.ID)
	assert.Check(t, running, "live-restore leaves plugins running")

	m2, err := New(ctx, cfg, e.fake.Factory, e.ev)
	assert.NilError(t, err)
	got, _ := m2.Inspect(ctx, "vol")
	assert.Check(t, got.Enabled)
	assert.Equal(t, e.fake.Creates(p.ID), 1, "reattached, not started again")

	// Gone while the daemon was down: started afresh.
	assert.NilError(t, m2.Shutdown(ctx))
	e.fake.StopAll()
	m3, err := New(ctx, cfg, e.fake.Factory, e.ev)
	assert.NilError(t, err)
	got, _ = m3.Inspect(ctx, "vol")
	assert.Check(t, got.Enabled)
	assert.Equal(t, e.fake.Creates(p.ID), 2)
}

func TestRestartOnExit(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	assert.NilError(t, m.Enable(ctx, "vol", 0))
	p, _ := m.Inspect(ctx, "vol")
	assert.NilError(t, e.fake.Crash(p.ID))
	deadline := time.Now().Add(10 * time.Second)
	for e.fake.Creates(p.ID) < 2 {
		assert.Assert(t, time.Now().Before(deadline), "plugin not restarted")
		time.Sleep(20 * time.Millisecond)
	}
	for {
		if ok, _ := e.fake.IsRunning(ctx, p.ID); ok {
			if got, _ := m.Inspect(ctx, "vol"); got.Enabled {
				break
			}
		}
		assert.Assert(t, time.Now().Before(deadline), "plugin not running again")
		time.Sleep(20 * time.Millisecond)
	}
	// A disabled plugin's exit is not answered by a restart.
	assert.NilError(t, m.Disable(ctx, "vol", false))
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, e.fake.Creates(p.ID), 2)
}

func TestEnableSocketNeverAppears(t *testing.T) {
	e := newEnv(t)
	e.fake.NoSocket = true
	ctx := context.Background()
	m, err := New(ctx, Config{Root: e.root, SocketRoot: e.sockets, SocketWait: 500 * time.Millisecond, StopTimeout: time.Second}, e.fake.Factory, e.ev)
	assert.NilError(t, err)
	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	start := time.Now()
	err = m.Enable(ctx, "vol", 0)
	assert.ErrorContains(t, err, "did not start")
	assert.Check(t, time.Since(start) < 10*time.Second)
	p, _ := m.Inspect(ctx, "vol")
	assert.Check(t, !p.Enabled)
	running, _ := e.fake.IsRunning(ctx, p.ID)
	assert.Check(t, !running)
	var rec v2.Record
	b, err := os.ReadFile(filepath.Join(e.root, p.ID, "config.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(b, &rec))
	assert.Check(t, !rec.Plugin.Enabled)
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	cfgEntry := entry{name: "config.json", body: testConfig}
	for _, tc := range []struct {
		name, plugin string
		tar          *bytes.Buffer
		err          string
	}{
		{name: "no config", plugin: "a", tar: makeTar(t, entry{name: "rootfs/x", body: "x"}), err: "config not found"},
		{name: "no rootfs", plugin: "a", tar: makeTar(t, cfgEntry), err: "no rootfs found"},
		{name: "bad json", plugin: "a", tar: makeTar(t, entry{name: "config.json", body: "{"}, entry{name: "rootfs/", typ: tar.TypeDir}), err: "invalid plugin config"},
		{name: "invalid config", plugin: "a", tar: makeTar(t, entry{name: "config.json", body: `{"Entrypoint":["/x"]}`}, entry{name: "rootfs/", typ: tar.TypeDir}), err: "Interface.Types is empty"},
		{name: "digest", plugin: "a@sha256:" + strings.Repeat("0", 64), tar: pluginTar(t), err: "canonical references are not permitted"},
		{name: "bad name", plugin: "UPPER", tar: pluginTar(t), err: "invalid plugin name"},
		{name: "not a tar", plugin: "a", tar: bytes.NewBufferString(strings.Repeat("garbage", 100)), err: "invalid plugin tarball"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Create(ctx, tc.plugin, tc.tar)
			assert.Check(t, errdefs.IsInvalidArgument(err), err)
			assert.ErrorContains(t, err, tc.err)
		})
	}
	list, _ := m.List(ctx, filters.NewArgs())
	assert.Equal(t, len(list), 0)
	tmp, _ := os.ReadDir(filepath.Join(e.root, "tmp"))
	assert.Equal(t, len(tmp), 0, "staging cleaned up")
}

func TestCreateStaysInsideRootfs(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	outside := t.TempDir()
	err := m.Create(context.Background(), "evil", makeTar(t,
		entry{name: "config.json", body: testConfig},
		entry{name: "rootfs/escape", typ: tar.TypeSymlink, link: outside},
		entry{name: "rootfs/escape/pwned", body: "x"},
	))
	assert.Check(t, err != nil)
	err = m.Create(context.Background(), "evil2", makeTar(t,
		entry{name: "config.json", body: testConfig},
		entry{name: "rootfs/up", typ: tar.TypeSymlink, link: "../../../../../../.." + outside},
		entry{name: "rootfs/up/pwned", body: "x"},
	))
	assert.Check(t, err != nil)
	_ = m.Create(context.Background(), "evil3", makeTar(t,
		entry{name: "config.json", body: testConfig},
		entry{name: "rootfs/../../pwned", body: "x"},
		entry{name: "rootfs/ok", body: "x"},
	))
	ents, _ := os.ReadDir(outside)
	assert.Equal(t, len(ents), 0)
	_, err = os.Stat(filepath.Join(e.root, "pwned"))
	assert.Check(t, os.IsNotExist(err))
	_, err = os.Stat(filepath.Join(filepath.Dir(e.root), "pwned"))
	assert.Check(t, os.IsNotExist(err))
}

func TestCrashLoopBackoff(t *testing.T) {
	m := &Manager{crashes: map[string]crashState{}}
	var got []time.Duration
	for i := 0; i < 10; i++ {
		got = append(got, m.crashDelay("x"))
	}
	assert.Equal(t, got[0], minCrashDelay)
	assert.Equal(t, got[1], 2*minCrashDelay)
	assert.Equal(t, got[9], maxCrashDelay)
	assert.Equal(t, m.crashDelay("other"), minCrashDelay)
	m.crashes["x"] = crashState{last: time.Now().Add(-2 * crashWindow), delay: maxCrashDelay}
	assert.Equal(t, m.crashDelay("x"), minCrashDelay, "a plugin that ran a while starts over")
}

func TestCreateKeepsOwnershipAndModes(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		assert.NilError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	add(&tar.Header{Name: "config.json", Typeflag: tar.TypeReg, Mode: 0o644}, testConfig)
	add(&tar.Header{Name: "rootfs/home/u/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000}, "")
	add(&tar.Header{Name: "rootfs/bin/suid", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0}, "x")
	add(&tar.Header{Name: "rootfs/home/u/f", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000}, "y")
	add(&tar.Header{Name: "rootfs/bin/sl", Typeflag: tar.TypeSymlink, Linkname: "/bin/suid"}, "")
	add(&tar.Header{Name: "rootfs/bin/hard", Typeflag: tar.TypeLink, Linkname: "rootfs/bin/suid"}, "")
	assert.NilError(t, tw.Close())
	assert.NilError(t, m.Create(context.Background(), "own", &buf))
	p, err := m.Inspect(context.Background(), "own")
	assert.NilError(t, err)
	rootfs := filepath.Join(e.root, p.ID, "rootfs")
	fi, err := os.Stat(filepath.Join(rootfs, "bin/suid"))
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode()&(os.ModeSetuid|os.ModePerm), os.ModeSetuid|0o755)
	if os.Geteuid() == 0 {
		st, err := os.Stat(filepath.Join(rootfs, "home/u/f"))
		assert.NilError(t, err)
		assert.Equal(t, ownerOf(st), 1000)
	}
	l, err := os.Readlink(filepath.Join(rootfs, "bin/sl"))
	assert.NilError(t, err)
	assert.Equal(t, l, "/bin/suid")
	b, err := os.ReadFile(filepath.Join(rootfs, "bin/hard"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "x")
}

func ownerOf(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

func TestInUseNamesHolders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var asked []string
	m, err := New(ctx, Config{Root: e.root, SocketRoot: e.sockets, SocketWait: 3 * time.Second,
		Holders: func(_ context.Context, names []string) []string {
			asked = names
			return []string{"v2", "v1"}
		}}, e.fake.Factory, e.ev)
	assert.NilError(t, err)
	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	assert.NilError(t, m.Enable(ctx, "vol", 0))
	_, err = m.Index().Acquire(ctx, "vol", getter.VolumeDriver)
	assert.NilError(t, err)
	err = m.Disable(ctx, "vol", false)
	assert.Check(t, errdefs.IsConflict(err))
	assert.Error(t, err, "plugin vol:latest is in use by volumes v1, v2")
	p, _ := m.Inspect(ctx, "vol")
	assert.DeepEqual(t, asked, []string{"vol:latest", p.ID, "vol"})
	assert.NilError(t, m.Disable(ctx, "vol", true))
}

func TestCreateAcceptsGzip(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(pluginTar(t).Bytes())
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())
	assert.NilError(t, m.Create(context.Background(), "zipped", &gz))
	_, err = m.Inspect(context.Background(), "zipped")
	assert.NilError(t, err)
}
