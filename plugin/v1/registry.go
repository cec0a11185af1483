package v1

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

// Registry finds and activates legacy plugins by name. Lookups are lazy, as dockerd's, but never retry a
// missing name: discovery is a few stats, so a name with no socket or spec fails at once and a plugin
// whose socket appears later is found by the next lookup.
type Registry struct {
	cfg    Config
	ctx    context.Context // lives until Close; background probes and restart hooks run under it
	cancel context.CancelFunc

	mu      sync.Mutex // guards plugins only; never held during I/O
	plugins map[string]*Plugin
}

// NewRegistry returns a registry over cfg's directories.
func NewRegistry(cfg Config) *Registry {
	ctx, cancel := context.WithCancel(context.Background())
	return &Registry{cfg: cfg.withDefaults(), ctx: ctx, cancel: cancel, plugins: map[string]*Plugin{}}
}

// NewSocketPlugin returns the plugin listening on the unix socket at socketPath, outside any registry:
// no discovery by name, but the same client as registry plugins (deadlines from cfg.Timeouts, bounded
// connect retry, re-activation when the socket is re-created, fail-fast with a background probe). Only
// cfg's directories are unused. The plugin activates on its first call (or Activate). name is for
// messages and logs.
//
// It is how the plugin manager talks to managed plugins. Their background probe has no registry to
// close it: it ends when the plugin answers again or when the socket file is gone, so whoever owns the
// socket removes it when the plugin is stopped.
func NewSocketPlugin(name, socketPath string, cfg Config) *Plugin {
	cfg.SocketDir, cfg.SpecDirs = "", nil
	r := NewRegistry(cfg)
	return &Plugin{name: name, socket: socketPath, reg: r, sem: make(chan struct{}, 1)}
}

// Close stops background probes. Plugins stay usable.
func (r *Registry) Close() { r.cancel() }

// Config is the effective configuration (defaults filled in).
func (r *Registry) Config() Config { return r.cfg }

func (r *Registry) entry(name string) *Plugin {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.plugins[name]
	if !ok {
		p = &Plugin{name: name, reg: r, sem: make(chan struct{}, 1)}
		r.plugins[name] = p
	}
	return p
}

// forget drops an entry that never became a plugin, so unknown names do not accumulate.
func (r *Registry) forget(p *Plugin) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.mu.Lock()
	unused := p.activations == 0 && !p.probing && len(p.hooks) == 0
	p.mu.Unlock()
	if unused && r.plugins[p.name] == p {
		delete(r.plugins, p.name)
	}
}

// notImplementsError is what Get returns for a plugin lacking the capability (dockerd: 500).
type notImplementsError struct{ name, capability string }

func (e *notImplementsError) Error() string {
	return fmt.Sprintf("Plugin does not implement the requested driver: plugin=%q, requested implementation=%q", e.name, e.capability)
}

// IsNotImplements reports whether err says a plugin lacks the requested capability.
func IsNotImplements(err error) bool {
	var e *notImplementsError
	return errors.As(err, &e)
}

// Get returns the named plugin, activated, if it implements capability ("" skips the check).
//
// Errors: NotFound (`plugin "x" not found`) when no socket or spec file exists for name (at once, no
// retry); Unavailable when it exists but cannot be reached, or while it is marked unavailable; a
// Plugin-does-not-implement error (IsNotImplements) for a capability mismatch.
func (r *Registry) Get(ctx context.Context, name, capability string) (*Plugin, error) {
	if !ValidName(name) {
		return nil, notFound(name)
	}
	p := r.entry(name)
	if _, err := p.ready(ctx); err != nil {
		if errdefs.IsNotFound(err) {
			r.forget(p)
		}
		return nil, err
	}
	if capability != "" && !p.hasCapability(capability) {
		return nil, &notImplementsError{name: name, capability: capability}
	}
	return p, nil
}

// Names lists the plugins present in the socket and spec directories, sorted, without contacting them.
func (r *Registry) Names() []string { return scan(&r.cfg) }

// GetAll activates every plugin present on disk concurrently and returns those implementing capability,
// sorted by name. A plugin that cannot be reached before ctx's deadline is skipped with a log line, so
// one dead plugin costs a listing at most the deadline, never a retry loop.
func (r *Registry) GetAll(ctx context.Context, capability string) []*Plugin {
	names := r.Names()
	found := make([]*Plugin, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := r.Get(ctx, n, capability)
			switch {
			case err == nil:
				found[i] = p
			case IsNotImplements(err), errdefs.IsNotFound(err):
			case IsMarkedUnavailable(err):
				log.G(ctx).WithField("plugin", n).WithError(err).Debug("skipping legacy plugin")
			default:
				log.G(ctx).WithField("plugin", n).WithError(err).Warn("skipping legacy plugin")
			}
		}()
	}
	wg.Wait()
	out := found[:0]
	for _, p := range found {
		if p != nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
