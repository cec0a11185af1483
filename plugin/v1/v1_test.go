package v1

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestDiscoveryAllKinds(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "flat.sock"), "VolumeDriver").start()
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "nested", "nested.sock"), "VolumeDriver").start()
	specSock := filepath.Join(t.TempDir(), "elsewhere.sock")
	newFakePlugin(t, specSock, "VolumeDriver").start()
	assert.NilError(t, os.MkdirAll(cfg.SpecDirs[0], 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg.SpecDirs[0], "specunix.spec"), []byte("  unix://"+specSock+"\n"), 0o644))

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	fp := newFakePlugin(t, "", "VolumeDriver")
	srv := &http.Server{Handler: fp}
	go srv.Serve(tcp)
	t.Cleanup(func() { srv.Close() })
	assert.NilError(t, os.MkdirAll(filepath.Join(cfg.SpecDirs[1], "spectcp"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg.SpecDirs[1], "spectcp", "spectcp.spec"), []byte("tcp://"+tcp.Addr().String()), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg.SpecDirs[1], "json.json"),
		[]byte(fmt.Sprintf(`{"Name":"ignored","Addr":"http://%s"}`, tcp.Addr())), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(cfg.SpecDirs[1], "noscheme.spec"), []byte("/run/x.sock"), 0o644))

	r := NewRegistry(cfg)
	defer r.Close()
	assert.DeepEqual(t, r.Names(), []string{"flat", "json", "nested", "noscheme", "spectcp", "specunix"})
	for _, n := range []string{"flat", "nested", "specunix", "spectcp", "json"} {
		p, err := r.Get(ctx, n, "VolumeDriver")
		assert.NilError(t, err, n)
		assert.Equal(t, p.Name(), n)
		var out map[string]string
		assert.NilError(t, p.CallContext(ctx, "Echo", map[string]string{"n": n}, &out), n)
		assert.DeepEqual(t, out, map[string]string{"n": n})
	}
	_, err = r.Get(ctx, "noscheme", "VolumeDriver")
	assert.ErrorContains(t, err, "Unknown protocol")
}

func TestUnknownAndInvalidNamesFailFast(t *testing.T) {
	cfg := testConfig(t)
	r := NewRegistry(cfg)
	defer r.Close()
	// A socket outside the socket dir must not be reachable by a crafted name.
	outside := filepath.Join(filepath.Dir(cfg.SocketDir), "evil.sock")
	newFakePlugin(t, outside, "VolumeDriver").start()
	for _, n := range []string{"nosuch", "", ".", "..", "../evil", "a/b", "x\x00y", `a\b`} {
		within(t, time.Second, func() {
			_, err := r.Get(context.Background(), n, "VolumeDriver")
			assert.Assert(t, errdefs.IsNotFound(err), "%q: %v", n, err)
			assert.Equal(t, err.Error(), fmt.Sprintf("plugin %q not found", n))
		})
	}
	r.mu.Lock()
	assert.Equal(t, len(r.plugins), 0, "unknown names must not be remembered")
	r.mu.Unlock()
}

func TestActivateOnceHeadersAndImplements(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	fp := newFakePlugin(t, filepath.Join(cfg.SocketDir, "p.sock"), "VolumeDriver").start()
	r := NewRegistry(cfg)
	defer r.Close()
	for i := 0; i < 3; i++ {
		p, err := r.Get(ctx, "p", "VolumeDriver")
		assert.NilError(t, err)
		assert.NilError(t, p.CallContext(ctx, "/Echo", nil, nil))
	}
	assert.DeepEqual(t, fp.callList(), []string{"Plugin.Activate", "Echo", "Echo", "Echo"})
	fp.mu.Lock()
	assert.Equal(t, fp.bodies["Plugin.Activate"], "")
	assert.Equal(t, fp.bodies["Echo"], "{}")
	for _, a := range fp.accepts {
		assert.Equal(t, a, "application/vnd.docker.plugins.v1.2+json")
	}
	fp.mu.Unlock()

	_, err := r.Get(ctx, "p", "NetworkDriver")
	assert.Assert(t, IsNotImplements(err))
	assert.Error(t, err, `Plugin does not implement the requested driver: plugin="p", requested implementation="NetworkDriver"`)
	assert.Equal(t, fp.count("Plugin.Activate"), 1)
}

func TestReplies(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxReplySize = 1024
	ctx := context.Background()
	reply := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "p.sock"), "VolumeDriver").
		handle("Empty", reply(200, "")).
		handle("Null", reply(200, "null")).
		handle("Obj", reply(200, `{"Err":""}`)).
		handle("Trailing", reply(200, `{} {}`)).
		handle("Garbage", reply(200, `{"Err":`)).
		handle("Huge", reply(200, `{"Err":"`+strings.Repeat("x", 4096)+`"}`)).
		handle("ErrJSON", reply(500, `{"Err":"boom"}`)).
		handle("ErrRaw", reply(500, "plain failure\n")).
		start()
	r := NewRegistry(cfg)
	defer r.Close()
	p, err := r.Get(ctx, "p", "VolumeDriver")
	assert.NilError(t, err)
	var ret struct{ Err string }
	call := func(m string) error { return p.CallContext(ctx, m, nil, &ret) }

	assert.ErrorContains(t, call("Empty"), "Empty: empty reply")
	assert.NilError(t, call("Null"))
	assert.NilError(t, call("Obj"))
	assert.ErrorContains(t, call("Trailing"), "data after the JSON value")
	assert.ErrorContains(t, call("Garbage"), "invalid reply")
	assert.ErrorContains(t, call("Huge"), "reply larger than 1024 bytes")
	assert.Error(t, call("ErrJSON"), "ErrJSON: boom")
	assert.Error(t, call("ErrRaw"), "ErrRaw: plain failure")
	err = call("Missing")
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	assert.ErrorContains(t, err, "Missing: 404 page not found")
	// A plugin that answers, even with errors, is alive: nothing was marked unavailable.
	assert.Equal(t, p.Activations(), uint64(1))
	assert.NilError(t, call("Null"))
	st := p.Stats()
	assert.Equal(t, st.Calls, uint64(10))
	assert.Equal(t, st.Errors, uint64(7))
	assert.Equal(t, st.Unavailable, uint64(0))
	assert.Assert(t, st.Latency > 0)
}

func TestDeadSocketFailsFastThenUnavailable(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cooldown = time.Minute
	ctx := context.Background()
	deadSocket(t, filepath.Join(cfg.SocketDir, "dead.sock"))
	r := NewRegistry(cfg)
	defer r.Close()
	for i := 0; i < cfg.withDefaults().FailureThreshold; i++ {
		within(t, 3*time.Second, func() {
			_, err := r.Get(ctx, "dead", "VolumeDriver")
			assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
			assert.ErrorContains(t, err, "connection refused")
		})
	}
	// Marked unavailable: now it fails at once, without dialing.
	within(t, 200*time.Millisecond, func() {
		_, err := r.Get(ctx, "dead", "VolumeDriver")
		assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
		assert.ErrorContains(t, err, "retrying in the background")
	})
}

func TestDeadPluginComesBackThroughProbe(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cooldown = 300 * time.Millisecond
	ctx := context.Background()
	path := filepath.Join(cfg.SocketDir, "p.sock")
	deadSocket(t, path)
	r := NewRegistry(cfg)
	defer r.Close()
	for i := 0; i < 3; i++ {
		_, err := r.Get(ctx, "p", "")
		assert.Assert(t, errdefs.IsUnavailable(err))
	}
	fp := newFakePlugin(t, path, "VolumeDriver").start()
	// The background probe activates it without any caller.
	deadline := time.Now().Add(5 * time.Second)
	for fp.count("Plugin.Activate") == 0 {
		assert.Assert(t, time.Now().Before(deadline), "probe never activated the plugin")
		time.Sleep(20 * time.Millisecond)
	}
	within(t, time.Second, func() {
		p, err := r.Get(ctx, "p", "VolumeDriver")
		assert.NilError(t, err)
		assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
	})
}

func TestHungCallIsBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeouts = Timeouts{Default: 5 * time.Second, Methods: map[string]time.Duration{"VolumeDriver.List": 300 * time.Millisecond}}
	ctx := context.Background()
	release := make(chan struct{})
	defer close(release)
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "p.sock"), "VolumeDriver").
		handle("VolumeDriver.List", hangUntil(release)).start()
	r := NewRegistry(cfg)
	defer r.Close()
	p, err := r.Get(ctx, "p", "VolumeDriver")
	assert.NilError(t, err)
	within(t, 3*time.Second, func() {
		err := p.CallContext(ctx, "VolumeDriver.List", nil, nil)
		assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
		assert.ErrorContains(t, err, "VolumeDriver.List: no reply within 300ms")
	})
	// The caller's own deadline is honoured too, and is not blamed on the plugin.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	within(t, 2*time.Second, func() {
		err := p.CallContext(cctx, "VolumeDriver.List", nil, nil)
		assert.Assert(t, is.ErrorIs(err, context.DeadlineExceeded))
	})
	// Other calls still work.
	assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
}

func TestAppearsLate(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	r := NewRegistry(cfg)
	defer r.Close()
	path := filepath.Join(cfg.SocketDir, "late", "late.sock")
	within(t, time.Second, func() {
		_, err := r.Get(ctx, "late", "VolumeDriver")
		assert.Assert(t, errdefs.IsNotFound(err))
	})
	newFakePlugin(t, path, "VolumeDriver").start()
	within(t, time.Second, func() {
		_, err := r.Get(ctx, "late", "VolumeDriver")
		assert.NilError(t, err)
	})
}

func TestRestartIsReactivated(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	path := filepath.Join(cfg.SocketDir, "p.sock")
	fp := newFakePlugin(t, path, "VolumeDriver").start()
	r := NewRegistry(cfg)
	defer r.Close()
	p, err := r.Get(ctx, "p", "VolumeDriver")
	assert.NilError(t, err)
	var restarted atomic.Int32
	p.OnRestart(func(context.Context) { restarted.Add(1) })
	assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))

	// Clean restart: a new socket replaces the old one. The next call activates the new instance first.
	fp.stop()
	fp2 := newFakePlugin(t, path, "VolumeDriver").start()
	assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
	assert.DeepEqual(t, fp2.callList(), []string{"Plugin.Activate", "Echo"})
	assert.Equal(t, p.Activations(), uint64(2))

	// Crash: the socket stays but refuses; calls fail (bounded) until it is started again.
	fp2.kill()
	within(t, 5*time.Second, func() {
		err := p.CallContext(ctx, "Echo", nil, nil)
		assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
	})
	fp3 := newFakePlugin(t, path, "VolumeDriver").start()
	assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
	assert.DeepEqual(t, fp3.callList(), []string{"Plugin.Activate", "Echo"})
	assert.Equal(t, p.Activations(), uint64(3))
	deadline := time.Now().Add(2 * time.Second)
	for restarted.Load() != 2 {
		assert.Assert(t, time.Now().Before(deadline), "restart hooks ran %d times", restarted.Load())
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSlowActivationDoesNotBlockOthers(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "slow.sock"), "VolumeDriver").
		handle("Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			w.Write([]byte(`{"Implements":["VolumeDriver"]}`))
		}).start()
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "fast.sock"), "VolumeDriver").start()
	r := NewRegistry(cfg)
	defer r.Close()
	done := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { _, err := r.Get(ctx, "slow", "VolumeDriver"); done <- err }()
	}
	<-entered // one activation of slow is in progress, holding slow's lock
	within(t, time.Second, func() {
		_, err := r.Get(ctx, "fast", "VolumeDriver")
		assert.NilError(t, err)
	})
	// A caller waiting on the per-name lock gives up with its context.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := r.Get(cctx, "slow", "VolumeDriver")
	assert.Assert(t, is.ErrorIs(err, context.DeadlineExceeded))
	close(release)
	assert.NilError(t, <-done)
	assert.NilError(t, <-done)
}

func TestGetAllSkipsDeadAndHung(t *testing.T) {
	cfg := testConfig(t)
	release := make(chan struct{})
	defer close(release)
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "good.sock"), "VolumeDriver").start()
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "net.sock"), "NetworkDriver").start()
	deadSocket(t, filepath.Join(cfg.SocketDir, "dead.sock"))
	newFakePlugin(t, filepath.Join(cfg.SocketDir, "hung.sock"), "VolumeDriver").
		handle("Plugin.Activate", hangUntil(release)).start()
	r := NewRegistry(cfg)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var names []string
	within(t, 4*time.Second, func() {
		for _, p := range r.GetAll(ctx, "VolumeDriver") {
			names = append(names, p.Name())
		}
	})
	assert.DeepEqual(t, names, []string{"good"})
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/x.sock":         "unix /run/x.sock http://plugin.moby.localhost/M",
		"tcp://127.0.0.1:80":         "tcp 127.0.0.1:80 http://127.0.0.1:80/M",
		"http://h:1/prefix/":         "tcp h:1 http://h:1/prefix/M",
		"https://h:2":                "tcp h:2 https://h:2/M",
		"/no/scheme":                 "error",
		"ftp://x":                    "error",
		"unix://":                    "error",
		"tcp://":                     "error",
		"\x7f":                       "error",
		"unix:relative/socket.sock":  "unix relative/socket.sock http://plugin.moby.localhost/M",
		"http://h:1/a/b?q=ignored#f": "tcp h:1 http://h:1/a/b/M",
	} {
		a, err := parseURL(in)
		if want == "error" {
			assert.Assert(t, err != nil, in)
			continue
		}
		assert.NilError(t, err, in)
		assert.Equal(t, a.network+" "+a.dialAddr+" "+a.url("M"), want, in)
	}
}
