// Package drivers owns the volume driver store: it maps a driver name to the built-in driver registered
// under it or to a plugin (managed or legacy) found through plugin/getter and wrapped by a PluginAdapter.
// The adapter itself (/VolumeDriver.* over the plugin client) lives in this package's adapter.go/proxy.go.
//
// Concurrency: lookups of one driver name are serialized by a per-name lock that waits with ctx, so a slow
// plugin lookup of driver A never blocks driver B, and no lock is held across a plugin call other than
// the looked-up name's own. It imports `volume`, `plugin/getter` (and `plugin/v1` for the adapter) only.
package drivers

import (
	"context"
	"sort"
	"sync"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/volume"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

// PluginAdapter wraps a plugin that implements the VolumeDriver capability as a volume.Driver named name.
// It must not call the plugin (calls happen lazily, with the caller's ctx); Scope is asked right after to
// validate the driver, and may call /VolumeDriver.Capabilities once.
type PluginAdapter func(name string, p getter.CompatPlugin) volume.Driver

// Store resolves driver names. The zero value is not usable; call NewStore.
type Store struct {
	getter getter.PluginGetter // may be nil: only built-in drivers then
	adapt  PluginAdapter       // may be nil: plugin drivers are then not supported

	mu      sync.Mutex
	drivers map[string]volume.Driver // built-ins and legacy plugins (activated once, so cached)
	builtin map[string]bool
	locks   map[string]chan struct{}
}

// NewStore returns a store with no drivers. pg may be nil (no plugin support: unknown names are
// `volume driver not found: X`); adapt may be nil when no plugin adapter is built in.
func NewStore(pg getter.PluginGetter, adapt PluginAdapter) *Store {
	return &Store{
		getter:  pg,
		adapt:   adapt,
		drivers: map[string]volume.Driver{},
		builtin: map[string]bool{},
		locks:   map[string]chan struct{}{},
	}
}

// Register adds a built-in driver under its Name; false if the name is taken.
func (s *Store) Register(d volume.Driver) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.drivers[d.Name()]; ok {
		return false
	}
	s.drivers[d.Name()] = d
	s.builtin[d.Name()] = true
	return true
}

// lock takes the per-name lock, giving up when ctx ends.
func (s *Store) lock(ctx context.Context, name string) (func(), error) {
	s.mu.Lock()
	ch, ok := s.locks[name]
	if !ok {
		ch = make(chan struct{}, 1)
		s.locks[name] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, errors.Wrapf(ctx.Err(), "waiting for volume driver %s", name)
	}
}

func (s *Store) cached(name string) (volume.Driver, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.drivers[name]
	return d, ok && d != nil
}

// IsBuiltin reports whether name is a registered built-in driver (no plugin refcount to manage).
func (s *Store) IsBuiltin(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.builtin[name]
}

func (s *Store) lookup(ctx context.Context, name string, mode int) (volume.Driver, error) {
	if name == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("driver name cannot be empty")
	}
	if d, ok := s.cached(name); ok {
		return d, nil
	}
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another lookup may have cached it while we waited.
	if d, ok := s.cached(name); ok {
		return d, nil
	}
	if s.getter == nil {
		return nil, errdefs.ErrNotFound.WithMessage("volume driver not found: " + name)
	}
	p, err := s.getter.Get(ctx, name, getter.VolumeDriver, mode)
	if err != nil {
		return nil, errors.Wrapf(err, "error looking up volume plugin %s", name)
	}
	if s.adapt == nil {
		s.undo(ctx, name, mode)
		return nil, errdefs.ErrNotImplemented.WithMessage("volume plugins are not supported by this daemon: " + name)
	}
	// A managed plugin is named by its canonical reference (vp:latest) whatever short form was asked for,
	// as in dockerd, so every volume of one plugin records the same driver name.
	dname := name
	if !p.IsV1() {
		dname = p.Name()
	}
	d := s.adapt(dname, p)
	if sc := d.Scope(ctx); sc != volume.LocalScope && sc != volume.GlobalScope {
		s.undo(ctx, name, mode)
		return nil, errors.Errorf("volume driver %s: invalid scope %q: must be %q or %q", name, sc, volume.LocalScope, volume.GlobalScope)
	}
	if p.IsV1() {
		s.mu.Lock()
		s.drivers[name] = d
		s.mu.Unlock()
	}
	return d, nil
}

// undo gives back a reference taken by a failed Acquire lookup.
func (s *Store) undo(ctx context.Context, name string, mode int) {
	if mode != getter.Acquire {
		return
	}
	if _, err := s.getter.Get(ctx, name, getter.VolumeDriver, getter.Release); err != nil {
		log.G(ctx).WithError(err).WithField("driver", name).Warn("volume driver: failed to release plugin reference")
	}
}

// GetDriver resolves name without changing a plugin's reference count.
func (s *Store) GetDriver(ctx context.Context, name string) (volume.Driver, error) {
	return s.lookup(ctx, name, getter.Lookup)
}

// CreateDriver resolves name and takes a reference on a managed plugin (one per volume it holds).
func (s *Store) CreateDriver(ctx context.Context, name string) (volume.Driver, error) {
	return s.lookup(ctx, name, getter.Acquire)
}

// ReleaseDriver gives back a reference taken by CreateDriver.
func (s *Store) ReleaseDriver(ctx context.Context, name string) (volume.Driver, error) {
	return s.lookup(ctx, name, getter.Release)
}

// GetAllDrivers lists built-in and cached drivers plus every plugin with the VolumeDriver capability.
// On a getter error it returns what it has, with the error, so that List can answer with a warning.
func (s *Store) GetAllDrivers(ctx context.Context) ([]volume.Driver, error) {
	s.mu.Lock()
	out := make([]volume.Driver, 0, len(s.drivers))
	seen := map[string]bool{}
	for n, d := range s.drivers {
		out = append(out, d)
		seen[n] = true
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	if s.getter == nil || s.adapt == nil {
		return out, nil
	}
	plugins, err := s.getter.GetAllByCap(ctx, getter.VolumeDriver)
	if err != nil {
		return out, errors.Wrap(err, "error listing volume plugins")
	}
	for _, p := range plugins {
		name := p.Name()
		if seen[name] {
			continue
		}
		seen[name] = true
		d := s.adapt(name, p)
		if p.IsV1() {
			s.mu.Lock()
			if cur, ok := s.drivers[name]; ok {
				d = cur
			} else {
				s.drivers[name] = d
			}
			s.mu.Unlock()
		}
		out = append(out, d)
	}
	return out, nil
}

// GetDriverList is the names of built-in and cached (legacy plugin) drivers, sorted, for /info.
func (s *Store) GetDriverList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.drivers))
	for n := range s.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
