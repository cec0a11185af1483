package store

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"

	"github.com/berthd/berthd/plugin/getter"
	v1 "github.com/berthd/berthd/plugin/v1"
)

func servePlugin(t *testing.T, path, implements string, activate http.HandlerFunc) {
	t.Helper()
	assert.NilError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	l, err := net.Listen("unix", path)
	assert.NilError(t, err)
	mux := http.NewServeMux()
	if activate == nil {
		activate = func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"Implements":["` + implements + `"]}`))
		}
	}
	mux.HandleFunc("/Plugin.Activate", activate)
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func deadSocket(t *testing.T, path string) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	assert.NilError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
}

func newStore(t *testing.T) (*Store, string) {
	dir := t.TempDir()
	s := New(Config{Legacy: v1.Config{SocketDir: dir, SpecDirs: []string{filepath.Join(dir, "specs")}}, ScanTimeout: time.Second})
	t.Cleanup(s.Close)
	return s, dir
}

func TestGetLegacy(t *testing.T) {
	s, dir := newStore(t)
	ctx := context.Background()
	servePlugin(t, filepath.Join(dir, "vol.sock"), "VolumeDriver", nil)
	p, err := s.Acquire(ctx, "vol", getter.VolumeDriver)
	assert.NilError(t, err)
	assert.Assert(t, p.IsV1())
	assert.Equal(t, p.ScopedPath("/x"), "/x")

	start := time.Now()
	_, err = s.Lookup(ctx, "nosuch", getter.VolumeDriver)
	assert.Assert(t, errdefs.IsNotFound(err))
	assert.Error(t, err, `plugin "nosuch" not found`)
	assert.Assert(t, time.Since(start) < time.Second)

	servePlugin(t, filepath.Join(dir, "net.sock"), "NetworkDriver", nil)
	_, err = s.Lookup(ctx, "net", getter.VolumeDriver)
	assert.ErrorContains(t, err, `legacy plugin: Plugin does not implement the requested driver: plugin="net"`)
}

func TestGetAllByCapAndVolumeDrivers(t *testing.T) {
	s, dir := newStore(t)
	hang := make(chan struct{})
	defer close(hang)
	servePlugin(t, filepath.Join(dir, "b.sock"), "VolumeDriver", nil)
	servePlugin(t, filepath.Join(dir, "a", "a.sock"), "VolumeDriver", nil)
	servePlugin(t, filepath.Join(dir, "net.sock"), "NetworkDriver", nil)
	servePlugin(t, filepath.Join(dir, "hung.sock"), "", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	deadSocket(t, filepath.Join(dir, "dead.sock"))

	start := time.Now()
	names := s.VolumeDrivers(context.Background())
	assert.Assert(t, time.Since(start) < 3*time.Second, "took %v", time.Since(start))
	assert.DeepEqual(t, names, []string{"a", "b", "local"})

	// Each listing that a plugin stalls counts against it: soon it is skipped at once.
	for i := 0; i < 2; i++ {
		s.VolumeDrivers(context.Background())
	}
	start = time.Now()
	names = s.VolumeDrivers(context.Background())
	assert.Assert(t, time.Since(start) < 500*time.Millisecond, "took %v", time.Since(start))
	assert.DeepEqual(t, names, []string{"a", "b", "local"})
}

type fakeManaged struct {
	plugins map[string]getter.CompatPlugin
	err     map[string]error
	modes   []string
}

func (f *fakeManaged) get(name, mode string) (getter.CompatPlugin, error) {
	if err := f.err[name]; err != nil {
		return nil, err
	}
	if p, ok := f.plugins[name]; ok {
		f.modes = append(f.modes, mode)
		return p, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("no managed plugin " + name)
}

func (f *fakeManaged) Lookup(_ context.Context, name, _ string) (getter.CompatPlugin, error) {
	return f.get(name, "lookup")
}

func (f *fakeManaged) Acquire(_ context.Context, name, _ string) (getter.CompatPlugin, error) {
	return f.get(name, "acquire")
}

func (f *fakeManaged) Release(_ context.Context, name, _ string) error {
	_, err := f.get(name, "release")
	return err
}

func (f *fakeManaged) GetAllByCap(context.Context, string) ([]getter.CompatPlugin, error) {
	var out []getter.CompatPlugin
	for _, p := range f.plugins {
		out = append(out, p)
	}
	return out, nil
}

type managedPlugin struct{ name string }

func (m managedPlugin) Name() string               { return m.name }
func (m managedPlugin) ScopedPath(p string) string { return "/rootfs" + p }
func (m managedPlugin) IsV1() bool                 { return false }
func (m managedPlugin) Client() getter.Client      { return nil }

func TestManagedFirstLegacyFallback(t *testing.T) {
	s, dir := newStore(t)
	ctx := context.Background()
	servePlugin(t, filepath.Join(dir, "both.sock"), "VolumeDriver", nil)
	servePlugin(t, filepath.Join(dir, "legacy.sock"), "VolumeDriver", nil)
	m := &fakeManaged{
		plugins: map[string]getter.CompatPlugin{"both": managedPlugin{"both"}},
		err:     map[string]error{"disabled": errdefs.ErrConflict.WithMessage("plugin disabled found but disabled")},
	}
	s = New(Config{Legacy: s.Legacy().Config(), Managed: m})
	t.Cleanup(s.Close)

	p, err := s.Acquire(ctx, "both", getter.VolumeDriver)
	assert.NilError(t, err)
	assert.Assert(t, !p.IsV1())
	assert.NilError(t, s.Release(ctx, "both", getter.VolumeDriver))
	assert.DeepEqual(t, m.modes, []string{"acquire", "release"})

	p, err = s.Acquire(ctx, "legacy", getter.VolumeDriver)
	assert.NilError(t, err)
	assert.Assert(t, p.IsV1())
	assert.NilError(t, s.Release(ctx, "legacy", getter.VolumeDriver), "legacy plugins are not counted")

	_, err = s.Lookup(ctx, "disabled", getter.VolumeDriver)
	assert.Assert(t, errdefs.IsConflict(err))

	all, err := s.GetAllByCap(ctx, getter.VolumeDriver)
	assert.NilError(t, err)
	var names []string
	for _, p := range all {
		names = append(names, p.Name())
	}
	assert.DeepEqual(t, names, []string{"both", "legacy"})
	assert.Assert(t, !all[0].IsV1())
}
