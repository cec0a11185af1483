// Package drivers owns the volume driver store: it maps a driver name to the built-in driver registered
// under it or to a plugin (managed or legacy) found through plugin/getter and wrapped by a PluginAdapter.
// Adapters are cached: a legacy plugin's for the daemon's lifetime (it is re-activated underneath when it
// restarts), a managed plugin's while the getter returns the same plugin with the same client, so its
// Capabilities are asked once per enable, not on every lookup. The adapter itself (/VolumeDriver.* over
// the plugin client) lives in this package's adapter.go/proxy.go.
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
	getter getter.PluginGetter
	adapt  PluginAdapter

	mu      sync.Mutex
	drivers map[string]volume.Driver // built-ins and legacy plugins (activated once, so cached)
	builtin map[string]bool
	// managed caches the adapter of each managed plugin by its canonical name, valid while the getter
	// hands back the same plugin with the same client: disabling, upgrading (which needs a disabled
	// plugin) or removing it changes one or the other, so a re-enabled plugin is adapted (and asked its
	// Capabilities) afresh, once.
	managed map[string]managedEntry
	locks   map[string]chan struct{}
}

type managedEntry struct {
	plugin getter.CompatPlugin
	client getter.Client
	d      volume.Driver
}

// NewStore returns a store with no drivers, resolving plugin drivers through pg with adapt. Both are
// required: a daemon without plugin support passes a getter that finds nothing.
func NewStore(pg getter.PluginGetter, adapt PluginAdapter) (*Store, error) {
	if pg == nil || adapt == nil {
		return nil, errors.New("volume driver store: a plugin getter and a plugin adapter are required")
	}
	return &Store{
		getter:  pg,
		adapt:   adapt,
		drivers: map[string]volume.Driver{},
		builtin: map[string]bool{},
		managed: map[string]managedEntry{},
		locks:   map[string]chan struct{}{},
	}, nil
}

// adapted is the cached adapter of managed plugin p when it is still valid, else a new one (not cached
// yet: the caller validates it first).
func (s *Store) adapted(p getter.CompatPlugin) (volume.Driver, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.managed[p.Name()]; ok && e.plugin == p && e.client == p.Client() {
		return e.d, true
	}
	return s.adapt(p.Name(), p), false
}

func (s *Store) cacheManaged(p getter.CompatPlugin, d volume.Driver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.managed[p.Name()] = managedEntry{plugin: p, client: p.Client(), d: d}
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

func (s *Store) lookup(ctx context.Context, name string, acquire bool) (volume.Driver, error) {
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
	get := s.getter.Lookup
	if acquire {
		get = s.getter.Acquire
	}
	p, err := get(ctx, name, getter.VolumeDriver)
	if err != nil {
		return nil, errors.Wrapf(err, "error looking up volume plugin %s", name)
	}
	if !p.IsV1() {
		// A managed plugin is named by its canonical reference (vp:latest) whatever short form was asked
		// for, as in dockerd, so every volume of one plugin records the same driver name.
		d, ok := s.adapted(p)
		if ok {
			return d, nil
		}
		if err := s.checkScope(ctx, name, d); err != nil {
			s.undo(ctx, name, acquire)
			return nil, err
		}
		s.cacheManaged(p, d)
		return d, nil
	}
	d := s.adapt(name, p)
	if err := s.checkScope(ctx, name, d); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.drivers[name] = d
	s.mu.Unlock()
	return d, nil
}

func (s *Store) checkScope(ctx context.Context, name string, d volume.Driver) error {
	if sc := d.Scope(ctx); sc != volume.LocalScope && sc != volume.GlobalScope {
		return errors.Errorf("volume driver %s: invalid scope %q: must be %q or %q", name, sc, volume.LocalScope, volume.GlobalScope)
	}
	return nil
}

// undo gives back a reference taken by a failed Acquire lookup.
func (s *Store) undo(ctx context.Context, name string, acquired bool) {
	if !acquired {
		return
	}
	if err := s.getter.Release(ctx, name, getter.VolumeDriver); err != nil {
		log.G(ctx).WithError(err).WithField("driver", name).Warn("volume driver: failed to release plugin reference")
	}
}

// GetDriver resolves name without changing a plugin's reference count.
func (s *Store) GetDriver(ctx context.Context, name string) (volume.Driver, error) {
	return s.lookup(ctx, name, false)
}

// CreateDriver resolves name and takes a reference on a managed plugin (one per volume it holds).
func (s *Store) CreateDriver(ctx context.Context, name string) (volume.Driver, error) {
	return s.lookup(ctx, name, true)
}

// ReleaseDriver gives back a reference taken by CreateDriver. Built-in drivers hold none.
func (s *Store) ReleaseDriver(ctx context.Context, name string) error {
	if s.IsBuiltin(name) {
		return nil
	}
	return s.getter.Release(ctx, name, getter.VolumeDriver)
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
		if !p.IsV1() {
			d, ok := s.adapted(p)
			if !ok {
				// Not validated by a Scope call here: a listing asks nothing of a plugin it did not need.
				s.cacheManaged(p, d)
			}
			out = append(out, d)
			continue
		}
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
