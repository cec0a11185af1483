package daemon

import (
	"context"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/daemon/system"
	"github.com/berthd/berthd/distribution"
	"github.com/berthd/berthd/libcontainerd/remote"
	"github.com/berthd/berthd/libcontainerd/types"
	"github.com/berthd/berthd/plugin/executor"
	ctdexecutor "github.com/berthd/berthd/plugin/executor/containerd"
	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/plugin/manager"
	"github.com/berthd/berthd/plugin/store"
	v1 "github.com/berthd/berthd/plugin/v1"
)

// pluginsArea is the plugin area's state in Daemon.
type pluginsArea struct {
	store   *store.Store
	manager *manager.Manager
}

// initPlugins builds the plugin manager, then the plugin store over it (docs/architecture.md §3), before
// volumes, which take the store as their plugin getter: legacy plugins are discovered lazily in the
// configured dirs; managed plugins are loaded from <data-root>/plugins and the enabled ones started (as
// containerd tasks in the plugin namespace) before this step returns.
func (d *Daemon) initPlugins(ctx context.Context) error {
	d.cfgMu.RLock()
	cfg := d.cfg
	d.cfgMu.RUnlock()
	timeouts := v1.DefaultTimeouts()
	if s := cfg.PluginTimeouts.Default; s > 0 {
		timeouts.Default = time.Duration(s) * time.Second
	}
	if s := cfg.PluginTimeouts.Create; s > 0 {
		timeouts.Methods["VolumeDriver.Create"] = time.Duration(s) * time.Second
		timeouts.Methods["VolumeDriver.Mount"] = time.Duration(s) * time.Second
	}
	address, ns := d.ctd.address, cfg.ContainerdPluginNamespace
	newExecutor := func(ctx context.Context, h executor.ExitHandler) (executor.Executor, error) {
		return ctdexecutor.New(ctx, ctdexecutor.Config{StateDir: filepath.Join(cfg.ExecRoot, "plugin-state")},
			func(ctx context.Context, cb types.EventCallback) (types.Client, error) {
				return remote.New(ctx, address, ns, cb)
			}, h)
	}
	m, err := manager.New(ctx, manager.Config{
		Root:          filepath.Join(cfg.Root, "plugins"),
		SocketRoot:    filepath.Join(cfg.ExecRoot, "plugins"),
		LiveRestore:   func() bool { return d.Config().LiveRestore },
		DockerVersion: system.Version,
		Holders:       d.volumesOnDrivers,
		// Plugin images never touch containerd's content store: the client only satisfies New.
		Registry: distribution.New(d.ctd.client, distribution.Config{Namespace: ns, Insecure: cfg.InsecureRegistries,
			UserAgent: "berthd/" + system.Version}),
	}, newExecutor, d.events)
	if err != nil {
		return err
	}
	d.onShutdown("managed plugins", m.Shutdown)
	// The store is built on the manager, so it can never resolve names without managed plugins.
	s := store.New(store.Config{Managed: m.Index(), Legacy: v1.Config{
		SocketDir: cfg.PluginsSocketDir,
		SpecDirs:  cfg.PluginsSpecDirs,
		Timeouts:  timeouts,
	}})
	d.onShutdown("plugins", func(context.Context) error { s.Close(); return nil })
	d.plugins = &pluginsArea{store: s, manager: m}
	return nil
}

// volumesOnDrivers names the volumes of the given drivers, for the plugin manager's "in use" errors.
// Volumes are built after plugins, so it answers nothing until they exist.
func (d *Daemon) volumesOnDrivers(ctx context.Context, drivers []string) []string {
	if d.volumes == nil {
		return nil
	}
	f := filters.NewArgs()
	for _, n := range drivers {
		f.Add("driver", n)
	}
	vols, _, err := d.volumes.List(ctx, f)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(vols))
	for _, v := range vols {
		names = append(names, v.Name)
	}
	return names
}

// PluginGetter is the plugin store (managed plugins first, legacy ones as fallback). It panics when
// called before the plugins step: a service built earlier would silently have no plugins.
func (d *Daemon) PluginGetter() getter.PluginGetter {
	if d.plugins == nil {
		panic("daemon: PluginGetter used before the plugins start-up step")
	}
	return d.plugins.store
}

// PluginManager is the plugin router's backend.
func (d *Daemon) PluginManager() *manager.Manager { return d.plugins.manager }
