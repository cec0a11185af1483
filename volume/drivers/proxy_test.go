package drivers

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"

	"github.com/berthd/berthd/plugin/getter"
	v1 "github.com/berthd/berthd/plugin/v1"
	"github.com/berthd/berthd/volume"
)

// faultPlugin is an in-test volume plugin on a real unix socket whose replies the test scripts per
// method; unscripted methods get 404, as from a plugin that does not implement them.
type faultPlugin struct {
	mu      sync.Mutex
	replies map[string]http.HandlerFunc
	calls   map[string]int
}

func startFaultPlugin(t *testing.T, socketDir string, replies map[string]http.HandlerFunc) *faultPlugin {
	t.Helper()
	f := &faultPlugin{replies: replies, calls: map[string]int{}}
	l, err := net.Listen("unix", filepath.Join(socketDir, "fault.sock"))
	assert.NilError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := r.URL.Path[1:]
		f.mu.Lock()
		f.calls[m]++
		h := f.replies[m]
		f.mu.Unlock()
		switch {
		case m == "Plugin.Activate":
			w.Write([]byte(`{"Implements":["VolumeDriver"]}`))
		case h != nil:
			h(w, r)
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *faultPlugin) count(m string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

func reply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(body)) }
}

func hang(release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

func faultDriver(t *testing.T, replies map[string]http.HandlerFunc, timeouts v1.Timeouts) (volume.Driver, *faultPlugin) {
	t.Helper()
	dir := t.TempDir()
	f := startFaultPlugin(t, dir, replies)
	reg := v1.NewRegistry(v1.Config{SocketDir: dir, Timeouts: timeouts})
	t.Cleanup(reg.Close)
	p, err := reg.Get(context.Background(), "fault", getter.VolumeDriver)
	assert.NilError(t, err)
	return NewPluginAdapter("fault", p), f
}

func TestScope(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		reply http.HandlerFunc
		want  string
	}{
		{"missing", nil, volume.LocalScope},
		{"global", reply(`{"Capabilities":{"Scope":"Global"}}`), volume.GlobalScope},
		{"empty", reply(`{}`), volume.LocalScope},
		{"invalid", reply(`{"Capabilities":{"Scope":"galaxy"}}`), volume.LocalScope},
		{"err", reply(`{"Err":"nope"}`), volume.LocalScope},
		{"garbage", reply(`{"Capabilities":`), volume.LocalScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			replies := map[string]http.HandlerFunc{}
			if tc.reply != nil {
				replies["VolumeDriver.Capabilities"] = tc.reply
			}
			d, f := faultDriver(t, replies, v1.Timeouts{})
			for i := 0; i < 3; i++ {
				assert.Equal(t, d.Scope(ctx), tc.want)
			}
			assert.Equal(t, f.count("VolumeDriver.Capabilities"), 1, "asked once per driver")
		})
	}
}

func TestGetAndErrors(t *testing.T) {
	ctx := context.Background()
	d, f := faultDriver(t, map[string]http.HandlerFunc{
		"VolumeDriver.Get": func(w http.ResponseWriter, r *http.Request) {
			var body [256]byte
			n, _ := r.Body.Read(body[:])
			switch string(body[:n]) {
			case `{"Name":"null"}`:
				w.Write([]byte(`{"Volume":null}`))
			case `{"Name":"err"}`:
				w.Write([]byte(`{"Err":"backend offline"}`))
			case `{"Name":"gone"}`:
				w.WriteHeader(500)
				w.Write([]byte(`{"Err":"volume gone not found"}`))
			default:
				w.Write([]byte(`{"Volume":{"Name":"v","Mountpoint":"/m/v","CreatedAt":"2024-05-01T10:00:00Z","Status":{"a":1}}}`))
			}
		},
		"VolumeDriver.Create": reply(`{"Err":"quota exceeded"}`),
		"VolumeDriver.List":   reply(`{"Volumes":[{"Name":"a","Mountpoint":"/m/a"},{"Name":"b"},null]}`),
		"VolumeDriver.Mount":  reply(`{"Mountpoint":"/m/v"}`),
		"VolumeDriver.Path":   reply(`{"Mountpoint":"/m/p"}`),
	}, v1.Timeouts{})

	_, err := d.Get(ctx, "null")
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
	assert.Error(t, err, "get null: no such volume")
	_, err = d.Get(ctx, "err")
	assert.Error(t, err, "VolumeDriver.Get: backend offline")
	assert.Assert(t, !errdefs.IsNotFound(err))
	_, err = d.Get(ctx, "gone")
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)

	v, err := d.Get(ctx, "v")
	assert.NilError(t, err)
	assert.Equal(t, v.Path(), "/m/v")
	ct, _ := v.CreatedAt()
	assert.Equal(t, ct, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))

	_, err = d.Create(ctx, "x", nil)
	assert.Error(t, err, "VolumeDriver.Create: quota exceeded")

	vols, err := d.List(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 2)
	assert.Equal(t, vols[0].Path(), "/m/a")
	assert.Equal(t, vols[1].Path(), "", "unknown mountpoint is not asked for")
	assert.Equal(t, f.count("VolumeDriver.Path"), 0)

	p, err := vols[1].(*pluginVolume).PathContext(ctx)
	assert.NilError(t, err)
	assert.Equal(t, p, "/m/p")
	assert.Equal(t, f.count("VolumeDriver.Path"), 1)

	// Remove and Unmount are not implemented by this plugin: 404 is NotFound.
	err = d.Remove(ctx, v)
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)
}

func TestHungPluginIsBounded(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	defer close(release)
	d, f := faultDriver(t, map[string]http.HandlerFunc{
		"VolumeDriver.List":  hang(release),
		"VolumeDriver.Mount": hang(release),
		"VolumeDriver.Get":   reply(`{"Volume":{"Name":"v"}}`),
	}, v1.Timeouts{Default: 300 * time.Millisecond, Methods: map[string]time.Duration{"VolumeDriver.Mount": 500 * time.Millisecond}})

	start := time.Now()
	_, err := d.List(ctx)
	assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Assert(t, time.Since(start) < 3*time.Second, "List took %v", time.Since(start))

	v, err := d.Get(ctx, "v")
	assert.NilError(t, err)
	start = time.Now()
	_, err = v.Mount(ctx, "id1")
	assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
	assert.ErrorContains(t, err, "VolumeDriver.Mount: no reply within 500ms")
	assert.Assert(t, time.Since(start) < 3*time.Second, "Mount took %v", time.Since(start))
	assert.Equal(t, len(d.(*pluginDriver).LiveMounts()), 0, "a failed mount is not tracked")
	assert.Equal(t, f.count("VolumeDriver.Unmount"), 0)
}

// scopedPlugin stands for a managed plugin, whose paths live under its rootfs.
type scopedPlugin struct{ getter.CompatPlugin }

func (s scopedPlugin) ScopedPath(p string) string { return "/rootfs" + p }

func TestScopedPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	startFaultPlugin(t, dir, map[string]http.HandlerFunc{
		"VolumeDriver.List":  reply(`{"Volumes":[{"Name":"a","Mountpoint":"/m/a"}]}`),
		"VolumeDriver.Get":   reply(`{"Volume":{"Name":"a","Mountpoint":"/m/a"}}`),
		"VolumeDriver.Mount": reply(`{"Mountpoint":"/m/a"}`),
	})
	reg := v1.NewRegistry(v1.Config{SocketDir: dir})
	defer reg.Close()
	p, err := reg.Get(ctx, "fault", getter.VolumeDriver)
	assert.NilError(t, err)
	d := NewPluginAdapter("fault", scopedPlugin{p})
	vols, err := d.List(ctx)
	assert.NilError(t, err)
	assert.Equal(t, vols[0].Path(), "/rootfs/m/a")
	v, err := d.Get(ctx, "a")
	assert.NilError(t, err)
	assert.Equal(t, v.Path(), "/rootfs/m/a")
	mp, err := v.Mount(ctx, "id")
	assert.NilError(t, err)
	assert.Equal(t, mp, "/rootfs/m/a")
}

func TestHungCapabilitiesDoesNotBlockScope(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	d, f := faultDriver(t, map[string]http.HandlerFunc{"VolumeDriver.Capabilities": hang(release)}, v1.Timeouts{})
	go d.Scope(context.Background()) // holds the one Capabilities call
	for f.count("VolumeDriver.Capabilities") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	assert.Equal(t, d.Scope(ctx), volume.LocalScope)
	assert.Assert(t, time.Since(start) < 2*time.Second, "Scope took %v", time.Since(start))
	assert.Equal(t, f.count("VolumeDriver.Capabilities"), 1)
}
