package daemon

import (
	"context"
	"time"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/plugin/store"
	v1 "github.com/berthd/berthd/plugin/v1"
)

// pluginsArea is the plugin area's state in Daemon.
type pluginsArea = store.Store

// initPlugins builds the plugin store (design.md §3 step 3) before volumes, which take it as their plugin
// getter. Legacy plugins are discovered lazily in the configured dirs; managed plugins come later.
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
	s := store.New(store.Config{Legacy: v1.Config{
		SocketDir: cfg.PluginsSocketDir,
		SpecDirs:  cfg.PluginsSpecDirs,
		Timeouts:  timeouts,
	}})
	d.plugins = s
	d.onShutdown("plugins", func(context.Context) error { s.Close(); return nil })
	return nil
}

// PluginGetter is the plugin store (managed plugins first, legacy ones as fallback).
func (d *Daemon) PluginGetter() getter.PluginGetter {
	if d.plugins == nil {
		return nil
	}
	return d.plugins
}
