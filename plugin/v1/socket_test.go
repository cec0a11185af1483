package v1

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A socket plugin (how the manager reaches managed plugins) speaks the same protocol as a registry
// plugin: these are the cases plugin/v2's own client was tested for before it was folded in here.
func TestSocketPlugin(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	f := newFakePlugin(t, sock, "VolumeDriver").
		handle("VolumeDriver.Get", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"Err":"no such volume"}`))
		}).
		handle("VolumeDriver.Empty", func(w http.ResponseWriter, r *http.Request) {}).
		handle("VolumeDriver.Hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }).
		start()
	ctx := context.Background()

	p := NewSocketPlugin("p:latest", sock, Config{})
	impl, err := p.Activate(ctx)
	assert.NilError(t, err)
	assert.DeepEqual(t, impl, []string{"VolumeDriver"})
	assert.Equal(t, p.Name(), "p:latest")

	err = p.CallContext(ctx, "/VolumeDriver.Get", map[string]string{"Name": "x"}, nil)
	assert.Error(t, err, "VolumeDriver.Get: no such volume")
	f.mu.Lock()
	assert.Check(t, is.Equal(f.bodies["VolumeDriver.Get"], `{"Name":"x"}`))
	assert.Check(t, is.Equal(f.bodies["Plugin.Activate"], ""))
	for _, a := range f.accepts {
		assert.Check(t, is.Equal(a, AcceptHeader))
	}
	f.mu.Unlock()

	err = p.CallContext(ctx, "VolumeDriver.Nope", nil, nil)
	assert.Check(t, errdefs.IsNotFound(err), err)
	err = p.CallContext(ctx, "VolumeDriver.Empty", nil, nil)
	assert.ErrorContains(t, err, "empty reply")
	assert.Check(t, is.Equal(f.count("Plugin.Activate"), 1))

	// --timeout: one deadline for every call.
	short := NewSocketPlugin("p:latest", sock, Config{Timeouts: UniformTimeouts(200 * time.Millisecond)})
	within(t, 5*time.Second, func() {
		err = short.CallContext(ctx, "VolumeDriver.Hang", nil, nil)
	})
	assert.Check(t, errdefs.IsUnavailable(err), err)
	assert.Check(t, is.ErrorContains(err, "no reply within 200ms"))
}

func TestSocketPluginUnreachable(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	missing := NewSocketPlugin("gone", filepath.Join(dir, "none.sock"), Config{})
	err := missing.CallContext(ctx, "VolumeDriver.Get", nil, nil)
	assert.Check(t, errdefs.IsUnavailable(err), err)
	_, err = missing.Activate(ctx)
	assert.Check(t, errdefs.IsUnavailable(err), err)

	sock := filepath.Join(dir, "dead.sock")
	deadSocket(t, sock)
	dead := NewSocketPlugin("dead", sock, Config{ConnectBackoff: time.Millisecond})
	within(t, 5*time.Second, func() { _, err = dead.Activate(ctx) })
	assert.Check(t, errdefs.IsUnavailable(err), err)
	assert.Check(t, is.ErrorContains(err, `plugin "dead" is unavailable`))
}

// A managed plugin restarted by the manager re-creates its socket at the same path: the next call
// activates the new instance.
func TestSocketPluginRestart(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	f := newFakePlugin(t, sock, "VolumeDriver").start()
	p := NewSocketPlugin("p", sock, Config{})
	ctx := context.Background()
	assert.NilError(t, p.CallContext(ctx, "Echo", map[string]int{"A": 1}, nil))
	f.stop()
	f2 := newFakePlugin(t, sock, "VolumeDriver").start()
	assert.NilError(t, p.CallContext(ctx, "Echo", map[string]int{"A": 2}, nil))
	assert.Check(t, is.Equal(f2.count("Plugin.Activate"), 1))
	assert.Check(t, is.Equal(p.Activations(), uint64(2)))
}

func TestUniformTimeouts(t *testing.T) {
	u := UniformTimeouts(3 * time.Second)
	assert.Check(t, is.Equal(u.For("VolumeDriver.Mount"), 3*time.Second))
	assert.Check(t, is.Equal(u.For("VolumeDriver.List"), 3*time.Second))
	c := Config{Timeouts: u}.withDefaults()
	assert.Check(t, is.Equal(c.Timeouts.For("VolumeDriver.Create"), 3*time.Second))
	assert.Check(t, is.Equal(c.Timeouts.Activate, 3*time.Second))
	assert.Check(t, is.DeepEqual(UniformTimeouts(0), DefaultTimeouts()))
}
