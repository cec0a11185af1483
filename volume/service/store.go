package service

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/volume"
	"github.com/berthd/berthd/volume/drivers"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/locker"
	"github.com/pkg/errors"
	bolt "go.etcd.io/bbolt"
)

// EventLogger receives volume events; daemon/events.Events satisfies it.
type EventLogger interface {
	Log(action string, typ events.Type, actor events.Actor)
}

var errNoSuchVolume = errdefs.ErrNotFound.WithMessage("no such volume")

// VolumeStore keeps what the drivers do not: which driver holds a name, labels, options, creation time
// and the holders (containers) referencing each volume; it persists them in bbolt.
//
// Locking: one lock per volume name (held across driver calls for that name only) and mu, which guards
// the maps and is never held across a driver call or a database commit.
type VolumeStore struct {
	locks   *locker.Locker
	drivers *drivers.Store
	db      *bolt.DB
	commits *committer // every write goes through it
	events  EventLogger
	// probeTimeout bounds each driver call made while probing every driver for a name.
	probeTimeout time.Duration
	listTimeout  time.Duration

	mu      sync.RWMutex
	names   map[string]volume.Volume
	refs    map[string]map[string]struct{}
	labels  map[string]map[string]string
	options map[string]map[string]string
	created map[string]time.Time
	// pending holds restored records whose driver has not been resolved yet (a plugin that is absent or
	// slow at start-up). They are kept, listed from the record, and resolved lazily.
	pending    map[string]volumeMetadata
	pendingErr map[string]error // by driver: why its records are still pending

	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
	retrying atomic.Bool
	closed   atomic.Bool
}

func (s *VolumeStore) logEvent(action, name string, attrs map[string]string) {
	if s.events != nil {
		s.events.Log(action, events.VolumeEventType, events.Actor{ID: name, Attributes: attrs})
	}
}

func (s *VolumeStore) cached(name string) (volume.Volume, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.names[name]
	return v, ok
}

func (s *VolumeStore) getPending(name string) (volumeMetadata, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.pending[name]
	return m, ok
}

// setNamed caches v with its metadata. Caller holds the name lock.
func (s *VolumeStore) setNamed(v volume.Volume, m volumeMetadata) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := v.Name()
	s.names[n] = v
	delete(s.pending, n)
	// Private copies: List hands these maps out without copying them again, so nothing may change them
	// after this point (they are replaced, never modified).
	s.labels[n] = copyMap(m.Labels)
	s.options[n] = copyMap(m.Options)
	if t, err := time.Parse(time.RFC3339Nano, m.CreatedAt); err == nil {
		s.created[n] = t
	}
}

// inUse is THE predicate for "referenced": rm refuses, prune skips and `dangling=false` selects exactly
// the volumes for which it is true.
func (s *VolumeStore) inUse(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.refs[name]) > 0
}

func (s *VolumeStore) refList(name string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.refs[name]))
	for r := range s.refs[name] {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func (s *VolumeStore) addRef(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs[name] == nil {
		s.refs[name] = map[string]struct{}{}
	}
	s.refs[name][ref] = struct{}{}
}

// release drops holder ref; releasing a reference that is not held is a no-op, so counts never go
// negative.
func (s *VolumeStore) release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refs[name], ref)
	if len(s.refs[name]) == 0 {
		delete(s.refs, name)
	}
}

// purge forgets a volume: driver reference, record and cache. Caller holds the name lock.
func (s *VolumeStore) purge(ctx context.Context, name, driver string) error {
	if driver != "" && !s.drivers.IsBuiltin(driver) {
		if err := s.drivers.ReleaseDriver(ctx, driver); err != nil {
			log.G(ctx).WithError(err).WithFields(log.Fields{"volume": name, "driver": driver}).Warn("volume store: cannot release driver reference")
		}
	}
	if err := deleteMeta(s.commits, name); err != nil {
		return errors.Wrapf(err, "error removing volume metadata for %s", name)
	}
	s.mu.Lock()
	delete(s.names, name)
	delete(s.refs, name)
	delete(s.labels, name)
	delete(s.options, name)
	delete(s.created, name)
	delete(s.pending, name)
	s.mu.Unlock()
	return nil
}

// Create creates (or returns the existing) volume name on driverName ("" = find by name, else local).
// created reports whether the driver made a new volume.
func (s *VolumeStore) Create(ctx context.Context, name, driverName string, cfg CreateConfig) (volume.Volume, bool, error) {
	s.locks.Lock(name)
	defer s.locks.Unlock(name)
	// After the name lock: an operation queued behind another on the same name cannot join its commit.
	s.commits.begin()
	defer s.commits.end()
	v, created, err := s.create(ctx, name, driverName, cfg.Options, cfg.Labels)
	if err != nil {
		return nil, false, errors.Wrapf(err, "create %s", name)
	}
	if cfg.Reference != "" {
		s.addRef(name, cfg.Reference)
	}
	if created {
		s.logEvent("create", name, map[string]string{"driver": v.DriverName()})
	}
	return v, created, nil
}

func conflictError(driver, name string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("driver '%s' already has volume '%s': volume name must be unique", driver, name))
}

func (s *VolumeStore) create(ctx context.Context, name, driverName string, opts, labels map[string]string) (volume.Volume, bool, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return nil, false, errdefs.ErrInvalidArgument.WithMessage("invalid volume name")
	}
	if v, ok := s.cached(name); ok {
		existing, err := s.checkConflict(ctx, v, driverName)
		if err != nil || existing != nil {
			return existing, false, err
		}
	} else if rec, ok := s.getPending(name); ok {
		if driverName != "" && driverName != rec.Driver {
			return nil, false, conflictError(rec.Driver, name)
		}
		v, err := s.resolvePending(ctx, rec)
		if err != nil || v != nil {
			return v, false, err
		}
	}
	if driverName == "" {
		if v := s.probe(ctx, name); v != nil {
			if err := s.adopt(ctx, v, nil, nil); err != nil {
				return nil, false, err
			}
			return v, false, nil
		}
		driverName = volume.DefaultDriverName
	}
	d, err := s.drivers.CreateDriver(ctx, driverName)
	if err != nil {
		return nil, false, err
	}
	builtin := s.drivers.IsBuiltin(d.Name())
	releaseDriver := func() {
		if !builtin {
			_ = s.drivers.ReleaseDriver(ctx, d.Name())
		}
	}
	created := false
	v, err := d.Get(ctx, name)
	if err != nil || v == nil {
		if v, err = d.Create(ctx, name, opts); err != nil {
			releaseDriver()
			return nil, false, err
		}
		created = true
	}
	m := volumeMetadata{Name: name, Driver: d.Name(), Labels: labels, Options: opts, CreatedAt: createdAt(v)}
	if err := putMeta(s.commits, m); err != nil {
		if created {
			_ = d.Remove(ctx, v)
		}
		releaseDriver()
		return nil, false, errors.Wrap(err, "error saving volume metadata")
	}
	s.setNamed(v, m)
	return v, created, nil
}

func createdAt(v volume.Volume) string {
	if t, err := v.CreatedAt(); err == nil && !t.IsZero() {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// adopt records a volume a driver already has (found by probing, or created behind our back).
func (s *VolumeStore) adopt(ctx context.Context, v volume.Volume, labels, opts map[string]string) error {
	if !s.drivers.IsBuiltin(v.DriverName()) {
		if _, err := s.drivers.CreateDriver(ctx, v.DriverName()); err != nil {
			return err
		}
	}
	m := volumeMetadata{Name: v.Name(), Driver: v.DriverName(), Labels: labels, Options: opts, CreatedAt: createdAt(v)}
	if err := putMeta(s.commits, m); err != nil {
		return errors.Wrap(err, "error saving volume metadata")
	}
	s.setNamed(v, m)
	return nil
}

// checkConflict decides what a create of a cached name means: the existing volume (same driver), a
// conflict (other driver), or nothing (the driver lost it: the stale entry is purged).
func (s *VolumeStore) checkConflict(ctx context.Context, v volume.Volume, driverName string) (volume.Volume, error) {
	conflict := false
	if driverName != "" && driverName != v.DriverName() {
		d, err := s.drivers.GetDriver(ctx, driverName)
		if err != nil {
			return nil, err
		}
		conflict = d.Name() != v.DriverName()
	}
	exists, err := s.volumeExists(ctx, v)
	if err != nil {
		return nil, err
	}
	if exists {
		if conflict {
			return nil, conflictError(v.DriverName(), v.Name())
		}
		return v, nil
	}
	if s.inUse(v.Name()) {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("found references to volume '%s' in driver '%s' but the volume was not found in the driver -- you may need to remove containers referencing this volume or force remove the volume to re-create it", v.Name(), v.DriverName()))
	}
	return nil, s.purge(ctx, v.Name(), v.DriverName())
}

func (s *VolumeStore) volumeExists(ctx context.Context, v volume.Volume) (bool, error) {
	d, err := s.drivers.GetDriver(ctx, v.DriverName())
	if err != nil {
		return false, err
	}
	got, err := d.Get(ctx, v.Name())
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return got != nil, nil
}

// probe asks every driver for name, each bounded by probeTimeout; the first that has it wins.
func (s *VolumeStore) probe(ctx context.Context, name string) volume.Volume {
	ds, err := s.drivers.GetAllDrivers(ctx)
	if err != nil {
		log.G(ctx).WithError(err).Debug("volume store: probing only known drivers")
	}
	for _, d := range ds {
		pctx, cancel := context.WithTimeout(ctx, s.probeTimeout)
		v, err := d.Get(pctx, name)
		cancel()
		if err == nil && v != nil {
			return v
		}
		if err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithFields(log.Fields{"volume": name, "driver": d.Name()}).Debug("volume store: probe failed")
		}
	}
	return nil
}

// Get finds a volume by name, optionally requiring its driver and taking a reference.
func (s *VolumeStore) Get(ctx context.Context, name string, cfg GetConfig) (volume.Volume, error) {
	s.locks.Lock(name)
	defer s.locks.Unlock(name)
	_, wasCached := s.cached(name)
	v, err := s.getVolume(ctx, name, cfg.Driver)
	if err == nil && cfg.ResolveStatus && wasCached {
		// Inspect asks the plugin, as dockerd does: its Status and CreatedAt are the plugin's to report,
		// and a volume of a dead plugin must not look healthy from the cache. A volume just resolved by
		// getVolume was asked already.
		v, err = s.askDriver(ctx, v)
	}
	if err != nil {
		return nil, errors.Wrapf(err, "get %s", name)
	}
	if cfg.Reference != "" {
		s.addRef(name, cfg.Reference)
	}
	return v, nil
}

// askDriver asks v's driver for the volume now. The answer is returned, not cached: the cached object
// stays the one mounts were made through. A driver that no longer has the volume gets the record purged
// (unless containers still reference it) and NotFound; any other failure names the driver. Caller holds
// the name lock.
func (s *VolumeStore) askDriver(ctx context.Context, v volume.Volume) (volume.Volume, error) {
	name, driver := v.Name(), v.DriverName()
	d, err := s.drivers.GetDriver(ctx, driver)
	if err == nil {
		var got volume.Volume
		got, err = d.Get(ctx, name)
		if err == nil && got != nil {
			return got, nil
		}
		if err == nil || errdefs.IsNotFound(err) {
			if s.inUse(name) {
				return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("volume %q is referenced by containers but driver %q no longer has it", name, driver))
			}
			if perr := s.purge(ctx, name, driver); perr != nil {
				return nil, perr
			}
			return nil, errNoSuchVolume
		}
	}
	err = errors.Wrapf(err, "error while checking if volume %q exists in driver %q", name, driver)
	log.G(ctx).WithError(err).WithFields(log.Fields{"volume": name, "driver": driver}).Warn("volume inspect: driver did not answer")
	return nil, err
}

// getVolume: cache, then pending record, then the named driver, then every driver. Caller holds the
// name lock.
func (s *VolumeStore) getVolume(ctx context.Context, name, driverName string) (volume.Volume, error) {
	if v, ok := s.cached(name); ok {
		if driverName != "" && driverName != v.DriverName() {
			return nil, errdefs.ErrConflict.WithMessage("provided volume driver does not match stored driver")
		}
		return v, nil
	}
	if rec, ok := s.getPending(name); ok {
		if driverName != "" && driverName != rec.Driver {
			return nil, errdefs.ErrConflict.WithMessage("provided volume driver does not match stored driver")
		}
		v, err := s.resolvePending(ctx, rec)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, errNoSuchVolume
		}
		return v, nil
	}
	var v volume.Volume
	if driverName != "" {
		d, err := s.drivers.GetDriver(ctx, driverName)
		if err != nil {
			return nil, err
		}
		got, err := d.Get(ctx, name)
		if errdefs.IsNotFound(err) || (err == nil && got == nil) {
			return nil, errNoSuchVolume
		}
		if err != nil {
			return nil, err
		}
		v = got
	} else if v = s.probe(ctx, name); v == nil {
		return nil, errNoSuchVolume
	}
	if err := s.adopt(ctx, v, nil, nil); err != nil {
		return nil, err
	}
	return v, nil
}

// Remove removes a volume that nobody references. With PurgeOnError an unknown volume is a success and
// a driver failure still forgets the volume (the error is returned all the same).
func (s *VolumeStore) Remove(ctx context.Context, name string, cfg RemoveConfig) error {
	s.locks.Lock(name)
	defer s.locks.Unlock(name)
	// After the name lock: an operation queued behind another on the same name cannot join its commit.
	s.commits.begin()
	defer s.commits.end()
	return s.remove(ctx, name, cfg)
}

func (s *VolumeStore) remove(ctx context.Context, name string, cfg RemoveConfig) error {
	v, err := s.getVolume(ctx, name, "")
	if err != nil {
		if rec, ok := s.getPending(name); ok && cfg.PurgeOnError {
			// The driver cannot be reached: forget the record, as asked.
			return s.purgeRecord(ctx, rec)
		}
		if errdefs.IsNotFound(err) && cfg.PurgeOnError {
			return nil
		}
		return errors.Wrapf(err, "get %s", name)
	}
	if s.inUse(name) {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(s.refList(name), ", ")))
	}
	d, err := s.drivers.GetDriver(ctx, v.DriverName())
	if err == nil {
		err = d.Remove(ctx, v)
		if errdefs.IsNotFound(err) {
			err = nil
		}
	}
	if err != nil {
		err = errors.Wrapf(err, "remove %s", name)
	}
	if err == nil || cfg.PurgeOnError {
		if perr := s.purge(ctx, name, v.DriverName()); perr != nil && err == nil {
			err = errors.Wrapf(perr, "remove %s", name)
		}
	}
	if err == nil {
		s.logEvent("destroy", name, map[string]string{"driver": v.DriverName()})
	}
	return err
}

// purgeRecord forgets a pending record whose driver never resolved (no driver reference was taken).
func (s *VolumeStore) purgeRecord(ctx context.Context, rec volumeMetadata) error {
	if err := deleteMeta(s.commits, rec.Name); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.pending, rec.Name)
	delete(s.refs, rec.Name)
	s.mu.Unlock()
	return nil
}

// Release drops holder ref from the volume (a no-op when not held).
func (s *VolumeStore) Release(ctx context.Context, name, ref string) error {
	s.locks.Lock(name)
	defer s.locks.Unlock(name)
	s.release(name, ref)
	return nil
}

// listResult is what one driver answered.
type listResult struct {
	vols  []volume.Volume
	scope string
	err   error
	done  bool
}

// List asks the selected drivers (all when only is nil) concurrently, each bounded by listTimeout; a
// driver that fails or does not answer in time yields a warning and its cached volumes instead. Restored
// records whose driver is not resolved are listed from the record. Scopes are returned by driver name.
func (s *VolumeStore) List(ctx context.Context, only map[string]bool) ([]volume.Volume, map[string]string, []string) {
	lctx, cancel := context.WithTimeout(ctx, s.listTimeout)
	defer cancel()
	var warnings []string
	all, err := s.drivers.GetAllDrivers(lctx)
	if err != nil {
		warnings = append(warnings, err.Error())
	}
	var ds []volume.Driver
	for _, d := range all {
		if only == nil || only[d.Name()] {
			ds = append(ds, d)
		}
	}
	results := make([]listResult, len(ds))
	type indexed struct {
		i int
		r listResult
	}
	ch := make(chan indexed, len(ds))
	for i, d := range ds {
		go func(i int, d volume.Driver) {
			vols, err := d.List(lctx)
			sc := volume.LocalScope
			if err == nil {
				sc = d.Scope(lctx)
			}
			ch <- indexed{i, listResult{vols: vols, scope: sc, err: err, done: true}}
		}(i, d)
	}
wait:
	for range ds {
		select {
		case r := <-ch:
			results[r.i] = r.r
		case <-lctx.Done():
			break wait
		}
	}
	scopes := map[string]string{}
	n := 0
	for _, r := range results {
		n += len(r.vols)
	}
	out := make([]volume.Volume, 0, n)
	seen := make(map[string]bool, n)
	// Called with s.mu read-locked (one lock for the whole listing, not one per volume).
	add := func(v volume.Volume) {
		if seen[v.Name()] {
			return
		}
		if c, ok := s.names[v.Name()]; ok && c.DriverName() != v.DriverName() {
			log.G(ctx).WithFields(log.Fields{"volume": v.Name(), "driver": v.DriverName()}).Warn("volume name already exists for another driver; not listing it")
			return
		}
		seen[v.Name()] = true
		out = append(out, v)
	}
	failed := map[string]bool{}
	s.mu.RLock()
	for i, d := range ds {
		r := results[i]
		if !r.done {
			r.err = errors.Errorf("no answer within %s", s.listTimeout)
		}
		if r.err != nil {
			warnings = append(warnings, fmt.Sprintf("list %s: %v", d.Name(), r.err))
			failed[d.Name()] = true
			continue
		}
		scopes[d.Name()] = r.scope
		for _, v := range r.vols {
			add(v)
		}
	}
	var fallback []volume.Volume
	if len(failed) > 0 {
		for _, v := range s.names {
			if failed[v.DriverName()] {
				fallback = append(fallback, v)
			}
		}
	}
	pendingDrivers := map[string]error{}
	for _, m := range s.pending {
		if only == nil || only[m.Driver] {
			fallback = append(fallback, &recordVolume{m})
			if _, listed := scopes[m.Driver]; !listed {
				pendingDrivers[m.Driver] = s.pendingErr[m.Driver]
			}
		}
	}
	for _, v := range fallback {
		add(v)
	}
	s.mu.RUnlock()
	s.retryPending(ctx, scopes)
	for d, err := range pendingDrivers {
		if failed[d] {
			continue
		}
		msg := fmt.Sprintf("volume driver %s is not available", firstNonEmpty(d, "(unknown)"))
		if err != nil {
			msg += ": " + err.Error()
		}
		warnings = append(warnings, msg)
	}
	sort.Strings(warnings)
	return out, scopes, warnings
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// meta returns the stored labels, options and creation time of a name.
func (s *VolumeStore) meta(name string) (labels, opts map[string]string, created time.Time) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if m, ok := s.pending[name]; ok {
		t, _ := time.Parse(time.RFC3339Nano, m.CreatedAt)
		return m.Labels, m.Options, t
	}
	return s.labels[name], s.options[name], s.created[name]
}

// listMeta is what List needs of the store for one volume.
type listMeta struct {
	labels, opts map[string]string
	created      time.Time
	inUse        bool
}

// metaAll is meta and inUse for every volume of vols, under one read lock. The maps are the stored ones,
// shared: callers must not modify them.
func (s *VolumeStore) metaAll(vols []volume.Volume) []listMeta {
	out := make([]listMeta, len(vols))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, v := range vols {
		n := v.Name()
		if m, ok := s.pending[n]; ok {
			t, _ := time.Parse(time.RFC3339Nano, m.CreatedAt)
			out[i] = listMeta{labels: m.Labels, opts: m.Options, created: t}
		} else {
			out[i] = listMeta{labels: s.labels[n], opts: s.options[n], created: s.created[n]}
		}
		out[i].inUse = len(s.refs[n]) > 0
	}
	return out
}

// snapshot lists cached volumes (for prune and df).
func (s *VolumeStore) snapshot() []volume.Volume {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]volume.Volume, 0, len(s.names))
	for _, v := range s.names {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Close stops background work and closes the database.
func (s *VolumeStore) Close() error {
	s.closed.Store(true)
	if s.bgCancel != nil {
		s.bgCancel()
	}
	s.bgWG.Wait()
	return s.db.Close()
}

// retryPending resolves, in the background, pending records whose driver just answered a List: a plugin
// that came back after start-up gets its volumes cached (with their driver reference) without anyone
// having to name them. One retry runs at a time.
func (s *VolumeStore) retryPending(ctx context.Context, listed map[string]string) {
	s.mu.RLock()
	var recs []volumeMetadata
	for _, m := range s.pending {
		if _, ok := listed[m.Driver]; ok {
			recs = append(recs, m)
		}
	}
	s.mu.RUnlock()
	if len(recs) == 0 || s.closed.Load() || !s.retrying.CompareAndSwap(false, true) {
		return
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		defer s.retrying.Store(false)
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		for _, m := range recs {
			if s.closed.Load() {
				return
			}
			s.locks.Lock(m.Name)
			if cur, ok := s.getPending(m.Name); ok {
				if _, err := s.resolvePending(bg, cur); err != nil {
					log.G(bg).WithError(err).WithField("volume", m.Name).Debug("volume store: pending record still unresolved")
				}
			}
			s.locks.Unlock(m.Name)
		}
	}()
}

// recordVolume stands for a restored record whose driver is not resolved yet.
type recordVolume struct{ m volumeMetadata }

func (r *recordVolume) Name() string       { return r.m.Name }
func (r *recordVolume) DriverName() string { return r.m.Driver }
func (r *recordVolume) Path() string       { return "" }
func (r *recordVolume) Mount(context.Context, string) (string, error) {
	return "", errdefs.ErrUnavailable.WithMessage("volume driver " + r.m.Driver + " is not available")
}
func (r *recordVolume) Unmount(context.Context, string) error { return nil }
func (r *recordVolume) CreatedAt() (time.Time, error) {
	return time.Parse(time.RFC3339Nano, r.m.CreatedAt)
}
func (r *recordVolume) Status() map[string]any { return nil }
