// Package containers owns containers: their records under <data-root>/containers/<id>/ (config.v2.json,
// hostconfig.json, the container log, hostname/hosts/resolv.conf), the state machine, and every operation
// of the container API: create, start, stop, kill, restart, wait, rm, rename, pause, update, attach, logs,
// exec, cp (archive), export, diff, commit, top, stats, list, inspect and prune; healthchecks, restart
// policies, and restore at daemon start (with or without live-restore).
//
// Service only composes parts, each a type with the state it owns (parts.go): lifecycle (the state
// machine, the libcontainerd client, RW layers and volumes), specBuilder (a run's spec and mounts),
// streamer (attach, logs, exec instances, healthchecks), filesystem (cp, export, diff, commit, user
// lookup, volume content), monitor (stats, top), query (ps, inspect, prune), restorer (restore,
// shutdown, restart policies) and Networking (network attachment). They share store, the index of
// containers with its own lock, and reach each other only through the small interfaces parts.go
// declares. Backend adapts them to the container router, one adapter per route group; BuildOps gives
// the builder the filesystem and lifecycle parts. The runtime spec is built by the pure package oci.
//
// Containers run as containerd tasks through libcontainerd/types (berthd never forks container processes);
// RW layers come from `layer`, image defaults from the image service, volumes from the volume service,
// each through a small interface declared here (ImageService, LayerStore, VolumeService). It must not
// import api/server or containerd: tar streams for cp and export go through `layer`.
package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	eventtypes "github.com/berthd/berthd/api/types/events"
	volumetypes "github.com/berthd/berthd/api/types/volume"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/layer"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	volumeservice "github.com/berthd/berthd/volume/service"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/opencontainers/go-digest"
)

// ImageService gives a container its image's defaults and RW-layer parent. NotFound "No such image: x"
// when the image is unknown.
type ImageService interface {
	RunConfig(ctx context.Context, ref string) (*image.RunConfig, error)
}

// LayerStore prepares and removes RW layers (layer.Store).
type LayerStore interface {
	Prepare(ctx context.Context, key string, parent digest.Digest, labels map[string]string) ([]layer.Mount, error)
	Remove(ctx context.Context, key string) error
	Mount(ctx context.Context, key, target string) error
	MountReadOnly(ctx context.Context, key, target string) error
	Unmount(ctx context.Context, target string) error
	Size(ctx context.Context, key string) (int64, error)
	// RootFSSize is the usage of the layer and all its parents.
	RootFSSize(ctx context.Context, key string) (int64, error)
	Mounts(ctx context.Context, key string) ([]layer.Mount, error)
	Changes(ctx context.Context, key string, fn fs.ChangeFunc) error
	WriteDiff(ctx context.Context, key string, w io.Writer, skip func(path string) bool) error
	Snapshotter() string
}

// VolumeService is the part of volume/service.VolumesService containers use. Every volume a container
// uses is held with reference = container ID from create until removal.
type VolumeService interface {
	Create(ctx context.Context, name, driverName string, opts ...volumeservice.CreateOption) (*volumetypes.Volume, error)
	Get(ctx context.Context, name string, opts ...volumeservice.GetOption) (*volumetypes.Volume, error)
	Release(ctx context.Context, name, ref string) error
	Remove(ctx context.Context, name string, opts ...volumeservice.RemoveOption) error
	Mount(ctx context.Context, name, mountID string, eventAttrs map[string]string) (string, error)
	Unmount(ctx context.Context, name, mountID string, eventAttrs map[string]string) error
	LiveRestoreVolume(ctx context.Context, name, mountID string) error
}

// EventLogger receives container events (daemon/events.Events).
type EventLogger interface {
	Log(action string, typ eventtypes.Type, actor eventtypes.Actor)
}

// Config configures the service.
type Config struct {
	// Root is <data-root>/containers.
	Root string
	// ExecRoot holds the stdio FIFOs (<exec-root>/containers); it survives a berthd restart, so a
	// live-restored container's IO is found again.
	ExecRoot string
	// LiveRestore leaves containers running across a daemon restart.
	LiveRestore bool
	// Networks gives containers their namespaces and endpoints (daemon/network); nil: loopback only.
	Networks Networks
	// InitPath is the init binary for --init (dockerd's docker-init; Debian's tini-static).
	InitPath string
	// CgroupParent is the cgroup under which containers go ("/berth" when empty).
	CgroupParent string
	// DefaultStopTimeout is the stop timeout of containers without one (10 s when zero).
	DefaultStopTimeout time.Duration
	// Security is the daemon's confinement defaults (security.go).
	Security SecurityConfig
	// Defaults are the administrator's defaults for new containers (admin.go).
	Defaults Defaults

	// firstRestartDelay replaces minRestartDelay when set: unit tests make it long to hold a container
	// in the restarting state.
	firstRestartDelay time.Duration
}

// Service composes the parts of the container service (parts.go); it owns no container state itself.
// It is safe for concurrent use.
type Service struct {
	cfg     *Config
	store   *store
	life    *lifecycle
	streams *streamer
	fs      *filesystem
	monitor *monitor
	query   *query
	restore *restorer
	net     *Networking
}

// New returns the service; Restore loads the containers. The caller builds the libcontainerd client with
// the service's EventCallback: remote.New(ctx, addr, ns, svc.ProcessEvent) then SetClient.
func New(cfg Config, images ImageService, layers LayerStore, volumes VolumeService, events EventLogger) (*Service, error) {
	if cfg.Root == "" || cfg.ExecRoot == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("container service: root and exec root are required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/berth"
	}
	if cfg.DefaultStopTimeout == 0 {
		cfg.DefaultStopTimeout = 10 * time.Second
	}
	for _, d := range []string{cfg.Root, cfg.ExecRoot} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, err
		}
	}
	var lastCap int
	var bounding uint64
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		for _, r := range strings.TrimSpace(string(b)) {
			lastCap = lastCap*10 + int(r-'0')
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
				bounding, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			}
		}
	}
	return compose(&cfg, images, layers, volumes, eventer{events}, caps{lastCap: lastCap, bounding: bounding}), nil
}

// SetClient installs the containerd client (built with ProcessEvent as its callback).
func (s *Service) SetClient(c ltypes.Client) {
	s.life.client, s.restore.client = c, c
}

func (s eventer) logEvent(c *Container, action string, extra map[string]string) {
	if s.events == nil {
		return
	}
	attrs := map[string]string{}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	attrs["image"] = c.Config.Image
	attrs["name"] = strings.TrimPrefix(c.Name, "/")
	for k, v := range extra {
		attrs[k] = v
	}
	s.events.Log(action, eventtypes.ContainerEventType, eventtypes.Actor{ID: c.ID, Attributes: attrs})
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var validContainerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func noSuchContainer(ref string) error {
	return errdefs.ErrNotFound.WithMessage("No such container: " + ref)
}

// store is the index of containers by ID and name, with its own lock; every part receives it.
type store struct {
	mu     sync.RWMutex
	byID   map[string]*Container
	byName map[string]string // name with "/" -> id
}

func newStore() *store {
	return &store{byID: map[string]*Container{}, byName: map[string]string{}}
}

// add indexes c by ID and name.
func (s *store) add(c *Container) {
	s.mu.Lock()
	s.byID[c.ID] = c
	s.byName[c.Name] = c.ID
	s.mu.Unlock()
}

// drop removes c from the index (its name only while it still points at c).
func (s *store) drop(c *Container) {
	s.mu.Lock()
	delete(s.byID, c.ID)
	if s.byName[c.Name] == c.ID {
		delete(s.byName, c.Name)
	}
	s.mu.Unlock()
}

// byExactID is the container with exactly this ID, nil when there is none.
func (s *store) byExactID(id string) *Container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byID[id]
}

// get finds a container by full ID, name or unique ID prefix, as dockerd's GetContainer.
func (s *store) get(ref string) (*Container, error) {
	if ref == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("No container name or ID supplied")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := s.byName[name]; ok {
		return s.byID[id], nil
	}
	var found *Container
	for id, c := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage("Multiple IDs found with provided prefix: " + ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, noSuchContainer(ref)
	}
	return found, nil
}

// reserveName claims name for id; Conflict when taken.
func (s *store) reserveName(name, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byName[name]; ok && other != id {
		return errdefs.ErrConflict.WithMessage("Conflict. The container name \"" + name + "\" is already in use by container \"" + other + "\". You have to remove (or rename) that container to be able to reuse that name.")
	}
	s.byName[name] = id
	return nil
}

func (s *store) releaseName(name string) {
	s.mu.Lock()
	delete(s.byName, name)
	s.mu.Unlock()
}

func (s *store) generateName(id string) (string, error) {
	for i := 0; i < 10; i++ {
		name := "/" + randomName(i)
		if err := s.reserveName(name, id); err == nil {
			return name, nil
		}
	}
	name := "/" + id[:12]
	return name, s.reserveName(name, id)
}

func (s *store) list() []*Container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	return out
}

// Counts is /info's container figures.
func (b *QueryAPI) Counts() (total, running, paused, stopped int) {
	for _, c := range b.query.list() {
		total++
		switch {
		case c.State.IsPaused():
			paused++
		case c.State.IsRunning():
			running++
		default:
			stopped++
		}
	}
	return
}

// ImageUsage tells the image service which containers use image id.
func (b *QueryAPI) ImageUsage(ctx context.Context, id digest.Digest) (running, stopped []string) {
	for _, c := range b.query.list() {
		if c.ImageID != string(id) {
			continue
		}
		if c.State.IsRunning() {
			running = append(running, c.ID)
		} else {
			stopped = append(stopped, c.ID)
		}
	}
	return
}

func (c *Config) fifoDir(id string) string { return filepath.Join(c.ExecRoot, id) }

func logCtx(ctx context.Context, c *Container) context.Context {
	return log.WithLogger(ctx, log.G(ctx).WithField("container", c.ID))
}

func eventActor(reclaimed uint64) eventtypes.Actor {
	return eventtypes.Actor{Attributes: map[string]string{"reclaimed": strconv.FormatUint(reclaimed, 10)}}
}

// eventer emits container events with the container's labels, image and name as attributes.
type eventer struct{ events EventLogger }

// caps are the host's capability limits exec and start specs are bounded by.
type caps struct {
	lastCap  int
	bounding uint64
}
