package drivers

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/volume"
)

// restartNotifier is implemented by plugins that can tell when they were re-activated after a restart
// (plugin/v1.Plugin): the adapter then mounts live mounts again, since the new plugin instance has
// forgotten them.
type restartNotifier interface {
	OnRestart(fn func(ctx context.Context)) (unregister func())
}

// NewPluginAdapter wraps p (a plugin implementing VolumeDriver) as the volume.Driver called name. It does
// not call the plugin; /VolumeDriver.Capabilities is asked by the first Scope call and cached. It has the
// PluginAdapter signature, for NewStore.
func NewPluginAdapter(name string, p getter.CompatPlugin) volume.Driver {
	return &pluginDriver{name: name, plugin: p, proxy: volumeProxy{c: p.Client()}, mounts: map[string]map[string]bool{}, paths: map[string]string{}, scopeSem: make(chan struct{}, 1)}
}

var _ PluginAdapter = NewPluginAdapter

type pluginDriver struct {
	name   string
	plugin getter.CompatPlugin
	proxy  volumeProxy

	scopeSem  chan struct{} // held during the one Capabilities call, so concurrent first callers share it
	scope     string
	scopeDone bool

	hookOnce sync.Once
	mu       sync.Mutex
	mounts   map[string]map[string]bool // volume name -> live mount IDs, to mount again after a restart
	// paths caches every mountpoint the plugin reported (List, Get, Mount, Path), so that a volume object
	// made by Create learns its path from a later List without a Path call.
	paths map[string]string
}

func (d *pluginDriver) setPath(name, p string) {
	if p == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paths[name] = p
}

func (d *pluginDriver) cachedPath(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paths[name]
}

func (d *pluginDriver) Name() string { return d.name }

func (d *pluginDriver) scoped(p string) string {
	if p == "" {
		return ""
	}
	return d.plugin.ScopedPath(p)
}

func (d *pluginDriver) Create(ctx context.Context, name string, opts map[string]string) (volume.Volume, error) {
	if err := d.proxy.Create(ctx, name, opts); err != nil {
		return nil, err
	}
	// No Path call: the mountpoint is learned from Mount, Get or List when someone needs it.
	return &pluginVolume{d: d, name: name}, nil
}

func (d *pluginDriver) Remove(ctx context.Context, v volume.Volume) error {
	if err := d.proxy.Remove(ctx, v.Name()); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.paths, v.Name())
	d.mu.Unlock()
	return nil
}

func (d *pluginDriver) List(ctx context.Context) ([]volume.Volume, error) {
	vs, err := d.proxy.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]volume.Volume, 0, len(vs))
	for _, v := range vs {
		if v == nil || v.Name == "" {
			continue
		}
		// From List only Name and Mountpoint are used, as dockerd.
		mp := d.scoped(v.Mountpoint)
		d.setPath(v.Name, mp)
		out = append(out, &pluginVolume{d: d, name: v.Name, mountpoint: mp})
	}
	return out, nil
}

func (d *pluginDriver) Get(ctx context.Context, name string) (volume.Volume, error) {
	v, err := d.proxy.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	pv := &pluginVolume{d: d, name: name, mountpoint: d.scoped(v.Mountpoint), status: v.Status}
	if v.Name != "" {
		pv.name = v.Name
	}
	d.setPath(pv.name, pv.mountpoint)
	if v.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, v.CreatedAt)
		if err != nil {
			log.G(ctx).WithField("driver", d.name).WithField("volume", name).WithError(err).Debug("plugin returned an invalid CreatedAt")
		} else {
			pv.createdAt = t
		}
	}
	return pv, nil
}

// Scope asks the plugin once. A plugin without Capabilities (an error or 404) is local, quietly; an
// unknown scope is local with a warning. A failure to reach the plugin is not cached.
func (d *pluginDriver) Scope(ctx context.Context) string {
	select {
	case d.scopeSem <- struct{}{}:
	case <-ctx.Done():
		// Waiting behind a slow Capabilities call: answer the default without caching it.
		return volume.LocalScope
	}
	defer func() { <-d.scopeSem }()
	if d.scopeDone {
		return d.scope
	}
	sc, err := d.proxy.Capabilities(ctx)
	if err != nil {
		log.G(ctx).WithField("driver", d.name).WithError(err).Debug("volume driver capabilities unavailable, using local scope")
		if ctx.Err() != nil || errdefs.IsUnavailable(err) {
			return volume.LocalScope
		}
		sc = volume.LocalScope
	}
	sc = strings.ToLower(strings.TrimSpace(sc))
	switch sc {
	case "":
		sc = volume.LocalScope
	case volume.LocalScope, volume.GlobalScope:
	default:
		log.G(ctx).WithField("driver", d.name).Warnf("volume driver reported an invalid scope %q, using local", sc)
		sc = volume.LocalScope
	}
	d.scope, d.scopeDone = sc, true
	return sc
}

func (d *pluginDriver) addMount(name, id string) {
	d.hookOnce.Do(func() {
		if rn, ok := d.plugin.(restartNotifier); ok {
			rn.OnRestart(d.remount)
		}
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mounts[name] == nil {
		d.mounts[name] = map[string]bool{}
	}
	d.mounts[name][id] = true
}

func (d *pluginDriver) removeMount(name, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.mounts[name], id)
	if len(d.mounts[name]) == 0 {
		delete(d.mounts, name)
	}
}

// LiveMounts lists "volume/id" pairs mounted through this driver and not yet unmounted (for tests and
// diagnostics).
func (d *pluginDriver) LiveMounts() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for n, ids := range d.mounts {
		for id := range ids {
			out = append(out, n+"/"+id)
		}
	}
	sort.Strings(out)
	return out
}

// remount runs after the plugin restarted: the new instance knows nothing of the mounts containers
// still hold, so each is mounted again with the same ID (its Unmount will come as usual).
func (d *pluginDriver) remount(ctx context.Context) {
	d.mu.Lock()
	type m struct{ name, id string }
	var todo []m
	for n, ids := range d.mounts {
		for id := range ids {
			todo = append(todo, m{n, id})
		}
	}
	d.mu.Unlock()
	for _, x := range todo {
		l := log.G(ctx).WithField("driver", d.name).WithField("volume", x.name)
		if _, err := d.proxy.Mount(ctx, x.name, x.id); err != nil {
			l.WithError(err).Error("volume plugin restarted: mounting a live mount again failed")
			continue
		}
		l.Info("volume plugin restarted: live mount mounted again")
	}
}

// pluginVolume is a volume of a plugin driver, with what the plugin last said about it.
type pluginVolume struct {
	d         *pluginDriver
	name      string
	createdAt time.Time
	status    map[string]any

	mu         sync.Mutex
	mountpoint string
}

func (v *pluginVolume) Name() string       { return v.name }
func (v *pluginVolume) DriverName() string { return v.d.name }

func (v *pluginVolume) Path() string {
	v.mu.Lock()
	p := v.mountpoint
	v.mu.Unlock()
	if p == "" {
		p = v.d.cachedPath(v.name)
	}
	return p
}

// PathContext is the mountpoint, asking the plugin (/VolumeDriver.Path) only when it is not known yet.
func (v *pluginVolume) PathContext(ctx context.Context) (string, error) {
	if p := v.Path(); p != "" {
		return p, nil
	}
	p, err := v.d.proxy.Path(ctx, v.name)
	if err != nil {
		return "", err
	}
	p = v.d.scoped(p)
	v.mu.Lock()
	v.mountpoint = p
	v.mu.Unlock()
	v.d.setPath(v.name, p)
	return p, nil
}

func (v *pluginVolume) Mount(ctx context.Context, id string) (string, error) {
	p, err := v.d.proxy.Mount(ctx, v.name, id)
	if err != nil {
		return "", err
	}
	p = v.d.scoped(p)
	v.mu.Lock()
	v.mountpoint = p
	v.mu.Unlock()
	v.d.setPath(v.name, p)
	v.d.addMount(v.name, id)
	return p, nil
}

// Unmount forgets the mount whatever the plugin answers: the holder is gone either way, and a restarted
// plugin must not be asked to mount it again.
func (v *pluginVolume) Unmount(ctx context.Context, id string) error {
	err := v.d.proxy.Unmount(ctx, v.name, id)
	v.d.removeMount(v.name, id)
	return err
}

func (v *pluginVolume) CreatedAt() (time.Time, error) { return v.createdAt, nil }

func (v *pluginVolume) Status() map[string]any { return v.status }
