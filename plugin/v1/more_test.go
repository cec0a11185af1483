package v1

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func TestHungPluginMarkedDownRecoversWithoutRestartHooks(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cooldown = 300 * time.Millisecond
	cfg.Timeouts = Timeouts{Methods: map[string]time.Duration{"VolumeDriver.List": 100 * time.Millisecond}}
	ctx := context.Background()
	release := make(chan struct{})
	defer close(release)
	fp := newFakePlugin(t, filepath.Join(cfg.SocketDir, "p.sock"), "VolumeDriver").
		handle("VolumeDriver.List", hangUntil(release)).start()
	r := NewRegistry(cfg)
	defer r.Close()
	p, err := r.Get(ctx, "p", "VolumeDriver")
	assert.NilError(t, err)
	var hooks atomic.Int32
	p.OnRestart(func(context.Context) { hooks.Add(1) })
	for i := 0; i < 3; i++ {
		assert.Assert(t, errdefs.IsUnavailable(p.CallContext(ctx, "VolumeDriver.List", nil, nil)))
	}
	// Marked unavailable: fails fast, without a call reaching the plugin.
	calls := len(fp.callList())
	err = p.CallContext(ctx, "Echo", nil, nil)
	assert.ErrorContains(t, err, "retrying in the background")
	assert.Assert(t, IsMarkedUnavailable(err))
	assert.Equal(t, len(fp.callList()), calls)
	deadline := time.Now().Add(5 * time.Second)
	for p.Activations() < 2 {
		assert.Assert(t, time.Now().Before(deadline), "probe did not bring the plugin back")
		time.Sleep(20 * time.Millisecond)
	}
	assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, hooks.Load(), int32(0), "the same instance came back: nothing to re-mount")
	assert.Equal(t, fp.count("Plugin.Activate"), 2)
}

func TestJSONSpecTLS(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	fp := newFakePlugin(t, "", "VolumeDriver")
	srv := httptest.NewTLSServer(fp)
	defer srv.Close()
	assert.NilError(t, os.MkdirAll(cfg.SpecDirs[0], 0o755))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	assert.NilError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))
	write := func(name, body string) {
		assert.NilError(t, os.WriteFile(filepath.Join(cfg.SpecDirs[0], name+".json"), []byte(body), 0o644))
	}
	write("verified", fmt.Sprintf(`{"Addr":%q,"TLSConfig":{"CAFile":%q}}`, srv.URL, ca))
	write("noca", fmt.Sprintf(`{"Addr":%q,"TLSConfig":{}}`, srv.URL))
	write("badca", fmt.Sprintf(`{"Addr":%q,"TLSConfig":{"CAFile":"/nonexistent/ca.pem"}}`, srv.URL))
	write("broken", `{"Addr":`)
	r := NewRegistry(cfg)
	defer r.Close()
	for _, n := range []string{"verified", "noca"} {
		p, err := r.Get(ctx, n, "VolumeDriver")
		assert.NilError(t, err, n)
		assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil), n)
	}
	_, err := r.Get(ctx, "badca", "VolumeDriver")
	assert.ErrorContains(t, err, "CA file")
	_, err = r.Get(ctx, "broken", "VolumeDriver")
	assert.ErrorContains(t, err, "invalid plugin spec")
}

// A plugin marked unavailable that is started again (a new socket file) is used by the very next call,
// not after the background probe's cool-down.
func TestMarkedDownPluginRestartedIsUsedAtOnce(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cooldown = time.Hour // the probe will not be the one to find it
	ctx := context.Background()
	path := filepath.Join(cfg.SocketDir, "p.sock")
	fp := newFakePlugin(t, path, "VolumeDriver").start()
	r := NewRegistry(cfg)
	defer r.Close()
	p, err := r.Get(ctx, "p", "VolumeDriver")
	assert.NilError(t, err)
	fp.kill()
	for i := 0; i < cfg.withDefaults().FailureThreshold; i++ {
		assert.Assert(t, errdefs.IsUnavailable(p.CallContext(ctx, "Echo", nil, nil)))
	}
	err = p.CallContext(ctx, "Echo", nil, nil)
	assert.Assert(t, IsMarkedUnavailable(err), "%v", err)

	fp2 := newFakePlugin(t, path, "VolumeDriver").start()
	assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
	assert.DeepEqual(t, fp2.callList(), []string{"Plugin.Activate", "Echo"})
	_, err = r.Get(ctx, "p", "VolumeDriver")
	assert.NilError(t, err)

	// Killed again, the same socket file left behind: marked again, and it stays failing fast.
	fp2.kill()
	for i := 0; i < cfg.withDefaults().FailureThreshold; i++ {
		assert.Assert(t, errdefs.IsUnavailable(p.CallContext(ctx, "Echo", nil, nil)))
	}
	n := len(fp2.callList())
	err = p.CallContext(ctx, "Echo", nil, nil)
	assert.Assert(t, IsMarkedUnavailable(err), "%v", err)
	assert.Equal(t, len(fp2.callList()), n)
}

// Activation is held to the call deadline (here 300ms, not the 30s activation default), and a plugin
// hung in Activate is marked unavailable at once: the next caller fails fast instead of waiting again.
func TestHungActivationFollowsCallDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cooldown = time.Hour
	cfg.Timeouts = Timeouts{Default: 300 * time.Millisecond}
	ctx := context.Background()
	release := make(chan struct{})
	defer close(release)
	fp := newFakePlugin(t, filepath.Join(cfg.SocketDir, "hung.sock"), "VolumeDriver").
		handle("Plugin.Activate", hangUntil(release)).start()
	r := NewRegistry(cfg)
	defer r.Close()
	_, err := r.Get(ctx, "hung", "VolumeDriver")
	assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
	assert.ErrorContains(t, err, "Plugin.Activate: no reply within 300ms")
	_, err = r.Get(ctx, "hung", "VolumeDriver")
	assert.Assert(t, IsMarkedUnavailable(err), "%v", err)
	assert.ErrorContains(t, err, "Plugin.Activate: no reply within 300ms")
	assert.Equal(t, fp.count("Plugin.Activate"), 1)
}
