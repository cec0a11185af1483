// Package store owns plugin resolution by name and capability: it implements getter.PluginGetter over
// managed (v2) plugins first, through the Managed index it is built with (the plugin manager, which keeps
// managed plugins' on-disk state), and legacy (v1) plugins, whose registry it holds, as fallback.
//
// It never holds a lock of its own during plugin I/O (the legacy registry locks per name) and imports
// plugin/... only; never volume/... or daemon/....
package store

import (
	"context"
	"sort"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/plugin/getter"
	v1 "github.com/berthd/berthd/plugin/v1"
)

// DefaultScanTimeout bounds GetAllByCap: a listing answers within it even with dead plugins present.
const DefaultScanTimeout = 2 * time.Second

// Managed is the index of managed plugins, as the manager will provide it.
type Managed interface {
	// Lookup, Acquire and Release resolve name (ID, ID prefix or reference) to an enabled managed plugin
	// with capability, Acquire and Release changing its reference count as getter.PluginGetter's. NotFound
	// (and only NotFound) lets the store fall back to legacy plugins; Conflict for a plugin that exists
	// but is disabled (`plugin x found but disabled`).
	Lookup(ctx context.Context, name, capability string) (getter.CompatPlugin, error)
	Acquire(ctx context.Context, name, capability string) (getter.CompatPlugin, error)
	Release(ctx context.Context, name, capability string) error
	// GetAllByCap lists enabled managed plugins with capability.
	GetAllByCap(ctx context.Context, capability string) ([]getter.CompatPlugin, error)
}

// Config configures the store.
type Config struct {
	// Legacy configures legacy plugin discovery and calls (socket dir, spec dirs, timeouts).
	Legacy v1.Config
	// ScanTimeout bounds GetAllByCap (default 2 s).
	ScanTimeout time.Duration
	// Managed is the managed plugin index (the plugin manager, built before the store); nil means legacy
	// plugins only.
	Managed Managed
}

// Store implements getter.PluginGetter.
type Store struct {
	legacy      *v1.Registry
	scanTimeout time.Duration
	managed     Managed
}

var _ getter.PluginGetter = (*Store)(nil)

// New returns a store; Close it to stop background probes of dead legacy plugins.
func New(cfg Config) *Store {
	s := &Store{legacy: v1.NewRegistry(cfg.Legacy), scanTimeout: cfg.ScanTimeout, managed: cfg.Managed}
	if s.scanTimeout <= 0 {
		s.scanTimeout = DefaultScanTimeout
	}
	return s
}

// Legacy is the legacy registry (for tests and diagnostics).
func (s *Store) Legacy() *v1.Registry { return s.legacy }

// Close stops background work.
func (s *Store) Close() { s.legacy.Close() }

func (s *Store) managedIndex() Managed { return s.managed }

// Lookup resolves name: a managed plugin first, then a legacy one. Errors: NotFound `plugin "x" not
// found` when neither exists (at once, never a retry loop); Conflict from the managed index for a
// disabled plugin (no fallback then); Unavailable for a legacy plugin that cannot be reached; `legacy
// plugin: ...` otherwise.
func (s *Store) Lookup(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	return s.get(ctx, name, capability, Managed.Lookup)
}

// Acquire is Lookup taking a reference on a managed plugin (legacy plugins are not counted).
func (s *Store) Acquire(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	return s.get(ctx, name, capability, Managed.Acquire)
}

// Release gives back a reference on a managed plugin; legacy plugins are not counted, so for them (and
// names that are not managed plugins) it does nothing, without contacting any plugin.
func (s *Store) Release(ctx context.Context, name, capability string) error {
	m := s.managedIndex()
	if m == nil {
		return nil
	}
	if err := m.Release(ctx, name, capability); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

func (s *Store) get(ctx context.Context, name, capability string, managed func(Managed, context.Context, string, string) (getter.CompatPlugin, error)) (getter.CompatPlugin, error) {
	if m := s.managedIndex(); m != nil {
		p, err := managed(m, ctx, name, capability)
		if err == nil {
			return p, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, err
		}
	}
	p, err := s.legacy.Get(ctx, name, capability)
	if err != nil {
		if errdefs.IsNotFound(err) || errdefs.IsUnavailable(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, errors.Wrap(err, "legacy plugin")
	}
	return p, nil
}

// GetAllByCap lists managed plugins with capability, then every legacy plugin on disk that implements it.
// Legacy plugins are activated concurrently under a deadline (ScanTimeout); dead ones are skipped with a
// log line.
func (s *Store) GetAllByCap(ctx context.Context, capability string) ([]getter.CompatPlugin, error) {
	var out []getter.CompatPlugin
	seen := map[string]bool{}
	if m := s.managedIndex(); m != nil {
		ps, err := m.GetAllByCap(ctx, capability)
		if err != nil {
			// Still list the legacy plugins: a listing answers with what it has.
			log.G(ctx).WithError(err).Warn("listing managed plugins")
		}
		for _, p := range ps {
			seen[p.Name()] = true
			out = append(out, p)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, s.scanTimeout)
	defer cancel()
	for _, p := range s.legacy.GetAll(sctx, capability) {
		if seen[p.Name()] {
			log.G(ctx).WithField("plugin", p.Name()).Debug("legacy plugin shadowed by a managed plugin of the same name")
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// VolumeDrivers names the volume drivers for `docker info`: "local" and every plugin implementing
// VolumeDriver that answers within the scan deadline, sorted.
func (s *Store) VolumeDrivers(ctx context.Context) []string {
	names := []string{"local"}
	ps, err := s.GetAllByCap(ctx, getter.VolumeDriver)
	if err != nil {
		log.G(ctx).WithError(err).Warn("listing volume plugins")
	}
	for _, p := range ps {
		if p.Name() != "local" {
			names = append(names, p.Name())
		}
	}
	sort.Strings(names)
	return names
}
