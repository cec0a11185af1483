// Package service owns the volume service: the VolumeStore (which driver holds each name, labels,
// options, creation time, references by holder ID, bbolt persistence and restore) and VolumesService, the
// API-facing layer the volume router and the containers service call.
//
// It imports `volume/...`, `plugin/getter`, api/types and storage libraries; never `daemon` or
// `api/server`. It never looks at API versions: version shims live in the router.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	volumetypes "github.com/berthd/berthd/api/types/volume"
	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/volume"
	"github.com/berthd/berthd/volume/drivers"
	"github.com/berthd/berthd/volume/local"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/locker"
	"github.com/pkg/errors"
)

// Config configures the volume service.
type Config struct {
	// Root is the daemon's data root; volumes live in Root/volumes, metadata in Root/volumes/metadata.db.
	Root string
	// ListTimeout bounds how long GET /volumes waits for each driver (default 1.5s): a dead plugin then
	// costs a warning, not a hung request.
	ListTimeout time.Duration
	// DBTimeout bounds waiting for the metadata database lock (default 1s).
	DBTimeout time.Duration
	// PluginAdapter wraps volume plugins as drivers; nil means drivers.NewPluginAdapter (the /VolumeDriver.*
	// adapter). Tests may substitute their own.
	PluginAdapter drivers.PluginAdapter
	// Local is the local driver over Root/volumes when the caller opened it ahead (local.New reads every
	// volume's directory, which the daemon does while containerd starts); nil: it is opened here.
	Local *local.Root
}

// VolumesService is the volume service. It satisfies the volume router's Backend.
type VolumesService struct {
	vs      *VolumeStore
	ds      *drivers.Store
	local   *local.Root
	events  EventLogger
	pruning atomic.Bool
	renders renderCache
}

// renderCache keeps the API form of listed volumes. A listing of thousands of volumes was mostly spent
// rebuilding (and then collecting) the same immutable objects: labels, options and creation time never change
// after create, so an entry stays valid as long as the driver hands back the same volume object with the same
// scope. Removed names are dropped lazily (see List).
type renderCache struct {
	mu sync.Mutex
	m  map[string]renderEntry
}

type renderEntry struct {
	v     volume.Volume
	scope string
	api   *volumetypes.Volume
}

// NewVolumeService builds the driver store (with `local` registered), opens the metadata database and
// restores the records. pg is required: plugins are set up before volumes (design.md §3), and a volume
// service built without them would silently lose every plugin volume driver. events may be nil.
func NewVolumeService(ctx context.Context, cfg Config, pg getter.PluginGetter, ev EventLogger) (*VolumesService, error) {
	if cfg.Root == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("volume service: no root directory")
	}
	if pg == nil {
		return nil, errors.New("volume service: no plugin getter (plugins must be set up before volumes)")
	}
	if cfg.ListTimeout <= 0 {
		cfg.ListTimeout = 1500 * time.Millisecond
	}
	if cfg.DBTimeout <= 0 {
		cfg.DBTimeout = time.Second
	}
	dir := filepath.Join(cfg.Root, "volumes")
	lr := cfg.Local
	if lr == nil {
		var err error
		if lr, err = local.New(ctx, dir); err != nil {
			return nil, err
		}
	}
	if cfg.PluginAdapter == nil {
		cfg.PluginAdapter = drivers.NewPluginAdapter
	}
	ds, err := drivers.NewStore(pg, cfg.PluginAdapter)
	if err != nil {
		return nil, err
	}
	ds.Register(lr)
	vs, err := newStore(ctx, dir, ds, ev, cfg)
	if err != nil {
		return nil, err
	}
	return &VolumesService{vs: vs, ds: ds, local: lr, events: ev}, nil
}

// newStore opens <dir>/metadata.db and restores it.
func newStore(ctx context.Context, dir string, ds *drivers.Store, ev EventLogger, cfg Config) (*VolumeStore, error) {
	if err := os.MkdirAll(dir, 0o701); err != nil {
		return nil, err
	}
	db, err := openDB(filepath.Join(dir, "metadata.db"), cfg.DBTimeout)
	if err != nil {
		return nil, err
	}
	s := &VolumeStore{
		locks: locker.New(), drivers: ds, db: db, commits: newCommitter(db), events: ev,
		probeTimeout: cfg.ListTimeout, listTimeout: cfg.ListTimeout,
		names: map[string]volume.Volume{}, refs: map[string]map[string]struct{}{},
		labels: map[string]map[string]string{}, options: map[string]map[string]string{},
		created: map[string]time.Time{}, pending: map[string]volumeMetadata{}, pendingErr: map[string]error{},
	}
	if err := s.restore(ctx); err != nil {
		db.Close()
		return nil, errors.Wrap(err, "error restoring volumes")
	}
	return s, nil
}

// Shutdown stops background restore work and closes the database.
func (s *VolumesService) Shutdown() error { return s.vs.Close() }

// Drivers exposes the driver store (e.g. to register more built-in drivers in tests).
func (s *VolumesService) Drivers() *drivers.Store { return s.ds }

// GetDriverList names the built-in and cached plugin drivers, for /info Plugins.Volume.
func (s *VolumesService) GetDriverList() []string { return s.ds.GetDriverList() }

func newAnonymousName() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create creates a volume; an empty name makes an anonymous one (random name, anonymous label). Creating
// an existing name on the same driver returns it.
func (s *VolumesService) Create(ctx context.Context, name, driverName string, opts ...CreateOption) (*volumetypes.Volume, error) {
	var cfg CreateConfig
	for _, o := range opts {
		o(&cfg)
	}
	if name == "" {
		name = newAnonymousName()
		WithCreateLabel(volumetypes.AnonymousLabel, "")(&cfg)
	}
	v, _, err := s.vs.Create(ctx, name, driverName, cfg)
	if err != nil {
		return nil, err
	}
	return s.toAPI(ctx, v, "", false), nil
}

// CreateVolume is POST /volumes/create.
func (s *VolumesService) CreateVolume(ctx context.Context, req volumetypes.CreateOptions) (*volumetypes.Volume, error) {
	return s.Create(ctx, req.Name, req.Driver, WithCreateOptions(req.DriverOpts), WithCreateLabels(req.Labels))
}

// Get finds a volume, optionally taking a reference or resolving its driver Status.
func (s *VolumesService) Get(ctx context.Context, name string, opts ...GetOption) (*volumetypes.Volume, error) {
	var cfg GetConfig
	for _, o := range opts {
		o(&cfg)
	}
	v, err := s.vs.Get(ctx, name, cfg)
	if err != nil {
		return nil, err
	}
	return s.toAPI(ctx, v, "", cfg.ResolveStatus), nil
}

// Inspect is GET /volumes/{name}: the volume with its driver Status.
func (s *VolumesService) Inspect(ctx context.Context, name string) (*volumetypes.Volume, error) {
	return s.Get(ctx, name, WithGetResolveStatus)
}

// Remove removes an unreferenced volume.
func (s *VolumesService) Remove(ctx context.Context, name string, opts ...RemoveOption) error {
	var cfg RemoveConfig
	for _, o := range opts {
		o(&cfg)
	}
	return s.vs.Remove(ctx, name, cfg)
}

// RemoveVolume is DELETE /volumes/{name}[?force=1].
func (s *VolumesService) RemoveVolume(ctx context.Context, name string, force bool) error {
	return s.Remove(ctx, name, WithPurgeOnError(force))
}

// Release drops holder ref (a container ID) from the volume.
func (s *VolumesService) Release(ctx context.Context, name, ref string) error {
	return s.vs.Release(ctx, name, ref)
}

// Mount mounts the volume for mountID (a fresh ID per container mount) and emits a `mount` event whose
// attributes are the driver plus eventAttrs (container, destination, read/write, propagation).
func (s *VolumesService) Mount(ctx context.Context, name, mountID string, eventAttrs map[string]string) (string, error) {
	v, err := s.vs.Get(ctx, name, GetConfig{})
	if err != nil {
		return "", err
	}
	p, err := v.Mount(ctx, mountID)
	if err != nil {
		return "", errors.Wrapf(err, "error while mounting volume '%s'", name)
	}
	s.logMountEvent("mount", v, eventAttrs)
	return p, nil
}

// Unmount undoes the Mount with the same mountID and emits an `unmount` event.
func (s *VolumesService) Unmount(ctx context.Context, name, mountID string, eventAttrs map[string]string) error {
	v, err := s.vs.Get(ctx, name, GetConfig{})
	if err != nil {
		return err
	}
	if err := v.Unmount(ctx, mountID); err != nil {
		return errors.Wrapf(err, "error while unmounting volume '%s'", name)
	}
	s.logMountEvent("unmount", v, eventAttrs)
	return nil
}

func (s *VolumesService) logMountEvent(action string, v volume.Volume, attrs map[string]string) {
	if s.events == nil {
		return
	}
	a := map[string]string{"driver": v.DriverName()}
	for k, val := range attrs {
		a[k] = val
	}
	s.events.Log(action, events.VolumeEventType, events.Actor{ID: v.Name(), Attributes: a})
}

// LiveRestoreVolume re-counts a mount that survived a daemon restart (live-restored container) without
// mounting again, for drivers that support it.
func (s *VolumesService) LiveRestoreVolume(ctx context.Context, name, mountID string) error {
	v, err := s.vs.Get(ctx, name, GetConfig{})
	if err != nil {
		return err
	}
	if lr, ok := v.(volume.LiveRestorer); ok {
		return lr.LiveRestoreVolume(ctx, mountID)
	}
	return nil
}

var acceptedListFilters = map[string]bool{"dangling": true, "name": true, "driver": true, "label": true}

// List lists volumes matching filters (dangling, name, driver, label) with per-driver warnings.
func (s *VolumesService) List(ctx context.Context, f filters.Args) ([]*volumetypes.Volume, []string, error) {
	if err := f.Validate(acceptedListFilters); err != nil {
		return nil, nil, err
	}
	var dangling, byDangling bool
	if f.Contains("dangling") {
		d, err := f.GetBoolOrDefault("dangling", false)
		if err != nil {
			return nil, nil, err
		}
		dangling, byDangling = d, true
	}
	var only map[string]bool
	if f.Contains("driver") {
		only = map[string]bool{}
		for _, d := range f.Get("driver") {
			only[d] = true
		}
	}
	vols, scopes, warnings := s.vs.List(ctx, only)
	// Metadata is read from the store only for filters that need it and for volumes not rendered before.
	var metas []listMeta
	if byDangling || f.Contains("label") {
		metas = s.vs.metaAll(vols)
	}
	out := make([]*volumetypes.Volume, 0, len(vols))
	var missed []int // indexes into vols whose rendering goes in out at the same position
	var missedAt []int
	s.renders.mu.Lock()
	if s.renders.m == nil {
		s.renders.m = make(map[string]renderEntry, len(vols))
	}
	for i, v := range vols {
		name := v.Name()
		if !f.Match("name", name) || !f.ExactMatch("driver", v.DriverName()) {
			continue
		}
		if metas != nil {
			m := &metas[i]
			if !f.MatchKVList("label", m.labels) || (byDangling && m.inUse == dangling) {
				continue
			}
		}
		scope := scopes[v.DriverName()]
		if e, ok := s.renders.m[name]; ok && e.v == v && e.scope == scope {
			out = append(out, e.api)
			continue
		}
		missed = append(missed, i)
		missedAt = append(missedAt, len(out))
		out = append(out, nil)
	}
	s.renders.mu.Unlock()
	// Rendering may ask a driver its scope: never with the cache locked, so one slow driver cannot hold
	// up other listings.
	var fresh []renderEntry
	if len(missed) > 0 {
		mv := make([]volume.Volume, len(missed))
		for j, i := range missed {
			mv[j] = vols[i]
		}
		mm := s.vs.metaAll(mv)
		for j, v := range mv {
			scope := scopes[v.DriverName()]
			// The stored maps are shared, not copied: a listing is only encoded, and they are never modified.
			api := s.render(ctx, v, scope, false, mm[j].labels, mm[j].opts, mm[j].created)
			out[missedAt[j]] = api
			if _, pending := v.(*recordVolume); !pending {
				fresh = append(fresh, renderEntry{v: v, scope: scope, api: api})
			}
		}
	}
	s.renders.mu.Lock()
	for _, e := range fresh {
		s.renders.m[e.v.Name()] = e
	}
	if len(s.renders.m) > 2*len(vols)+64 && only == nil {
		// Mostly removed names: keep only what this (complete) listing saw.
		keep := make(map[string]renderEntry, len(vols))
		for _, v := range vols {
			if e, ok := s.renders.m[v.Name()]; ok {
				keep[v.Name()] = e
			}
		}
		s.renders.m = keep
	}
	s.renders.mu.Unlock()
	slices.SortFunc(out, func(a, b *volumetypes.Volume) int { return strings.Compare(a.Name, b.Name) })
	return out, warnings, nil
}

// toAPI renders a volume. scope "" means: ask the (cached) driver.
func (s *VolumesService) toAPI(ctx context.Context, v volume.Volume, scope string, status bool) *volumetypes.Volume {
	labels, opts, created := s.vs.meta(v.Name())
	return s.render(ctx, v, scope, status, copyMap(labels), copyMap(opts), created)
}

// render is toAPI with the metadata given; labels and opts are used as they are.
func (s *VolumesService) render(ctx context.Context, v volume.Volume, scope string, status bool, labels, opts map[string]string, created time.Time) *volumetypes.Volume {
	if t, err := v.CreatedAt(); err == nil && !t.IsZero() {
		created = t
	}
	if scope == "" {
		scope = volume.LocalScope
		if _, pending := v.(*recordVolume); !pending {
			if d, err := s.ds.GetDriver(ctx, v.DriverName()); err == nil {
				scope = d.Scope(ctx)
			}
		}
	}
	out := &volumetypes.Volume{
		Name:       v.Name(),
		Driver:     v.DriverName(),
		Mountpoint: v.Path(),
		Labels:     nilIfEmpty(labels),
		Options:    nilIfEmpty(opts),
		Scope:      scope,
	}
	if !created.IsZero() {
		out.CreatedAt = created.Local().Format(time.RFC3339)
	}
	if status {
		out.Status = v.Status()
		if pr, ok := v.(volume.PathResolver); ok && out.Mountpoint == "" {
			if p, err := pr.PathContext(ctx); err == nil {
				out.Mountpoint = p
			} else {
				log.G(ctx).WithError(err).WithField("volume", v.Name()).Debug("driver did not report the mountpoint")
			}
		}
	}
	return out
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var acceptedPruneFilters = map[string]bool{"label": true, "label!": true, "all": true}

// Prune removes unreferenced local volumes without driver options: only anonymous ones unless the
// filter all=true is given (the router adds it for API < 1.42). One prune runs at a time.
func (s *VolumesService) Prune(ctx context.Context, f filters.Args) (*volumetypes.PruneReport, error) {
	if !s.pruning.CompareAndSwap(false, true) {
		return nil, errdefs.ErrConflict.WithMessage("a prune operation is already running")
	}
	defer s.pruning.Store(false)
	if err := f.Validate(acceptedPruneFilters); err != nil {
		return nil, err
	}
	all, err := f.GetBoolOrDefault("all", false)
	if err != nil {
		return nil, err
	}
	rep := &volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, v := range s.vs.snapshot() {
		if err := ctx.Err(); err != nil {
			break
		}
		name := v.Name()
		if !s.pruneCandidate(v, f, all) {
			continue
		}
		s.vs.locks.Lock(name)
		// Re-check under the name lock: a container may have taken a reference meanwhile.
		if cur, ok := s.vs.cached(name); !ok || cur != v || !s.pruneCandidate(v, f, all) {
			s.vs.locks.Unlock(name)
			continue
		}
		size := dirSize(v.Path())
		err := s.vs.remove(ctx, name, RemoveConfig{})
		s.vs.locks.Unlock(name)
		if err != nil {
			log.G(ctx).WithError(err).WithField("volume", name).Warn("volume prune: cannot remove volume")
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, name)
		rep.SpaceReclaimed += uint64(size)
	}
	if s.events != nil {
		s.events.Log("prune", events.VolumeEventType, events.Actor{Attributes: map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)}})
	}
	return rep, nil
}

func (s *VolumesService) pruneCandidate(v volume.Volume, f filters.Args, all bool) bool {
	if v.DriverName() != volume.DefaultDriverName || s.vs.inUse(v.Name()) {
		return false
	}
	labels, opts, _ := s.vs.meta(v.Name())
	if len(opts) > 0 {
		return false
	}
	if !all {
		if _, anon := labels[volumetypes.AnonymousLabel]; !anon {
			return false
		}
	}
	if !f.MatchKVList("label", labels) {
		return false
	}
	if f.Contains("label!") && f.MatchKVList("label!", labels) {
		return false
	}
	return true
}

// LocalVolumesSize lists local volumes without options with their size and reference count, for
// /system/df.
func (s *VolumesService) LocalVolumesSize(ctx context.Context) ([]*volumetypes.Volume, error) {
	var out []*volumetypes.Volume
	for _, v := range s.vs.snapshot() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if v.DriverName() != volume.DefaultDriverName {
			continue
		}
		if _, opts, _ := s.vs.meta(v.Name()); len(opts) > 0 {
			continue
		}
		av := s.toAPI(ctx, v, volume.LocalScope, false)
		av.UsageData = &volumetypes.UsageData{Size: dirSize(v.Path()), RefCount: int64(len(s.vs.refList(v.Name())))}
		out = append(out, av)
	}
	return out, nil
}

// dirSize sums the sizes of the files under dir, counting hard-linked files once.
func dirSize(dir string) int64 {
	if dir == "" {
		return 0
	}
	var size int64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		size += fi.Size()
		return nil
	})
	return size
}
