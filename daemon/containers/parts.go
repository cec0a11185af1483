package containers

import (
	"context"
	"sync"
	"syscall"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
)

// The parts of the container service. Each owns its state and reaches the others only through the small
// interfaces below; compose wires them. All share the index of containers (store) and the containers'
// own records and locks (Container, State).

// lifecycle owns the state machine: create, start, stop, kill, restart, wait, rm, rename, pause, update,
// exits; it holds the libcontainerd client and the RW layers and volumes of containers from create to
// removal.
type lifecycle struct {
	*store
	eventer
	cfg     *Config
	client  ltypes.Client
	images  ImageService
	layers  LayerStore
	volumes VolumeService
	spec    runSpec
	procs   processes
	fs      rootFS
	net     attacher
	policy  restartPolicy

	teardowns sync.WaitGroup // background teardowns of removed --rm containers (teardown.go)
}

// specBuilder owns what a run is made of: the runtime spec (through the pure package oci) and the mounts
// it binds (volumes mounted for the run, pinned volume subpaths, binds, the generated /etc files).
type specBuilder struct {
	*store
	caps
	cfg     *Config
	volumes VolumeService
	users   userResolver
	owners  netOwners
}

// streamer owns the streams of running containers: attach, logs, and the exec instances (docker exec and
// healthcheck probes), by exec ID.
type streamer struct {
	*store
	eventer
	caps
	cfg    *Config
	users  userResolver
	execMu sync.RWMutex
	execs  map[string]*execConfig
}

// filesystem owns what is done to a container's files: cp (archive), export, diff, commit, the content
// copied into new volumes, user lookup in the container's /etc, and the builder's primitives on them.
type filesystem struct {
	*store
	eventer
	cfg        *Config
	layers     LayerStore
	volumes    VolumeService
	imageStore ImageStore
}

// monitor reports on running containers: stats and top.
type monitor struct {
	*store
	cfg *Config
	net netCounters
}

// query answers from the records: ps, inspect, prune, and the counts of /info and image usage.
type query struct {
	*store
	eventer
	layers LayerStore
	net    netView
	life   remover
}

// restorer owns the daemon's start and end for containers (restore from disk and containerd, shutdown)
// and restart policies, which shutdown turns off.
type restorer struct {
	*store
	eventer
	cfg     *Config
	client  ltypes.Client
	volumes VolumeService
	life    runner
	mounts  volumeMounts
	net     releaser

	downMu       sync.Mutex
	shuttingDown bool
}

// volumeMounts undoes a run's mounts.
type volumeMounts interface {
	unmountVolumes(ctx context.Context, c *Container)
}

// runSpec is what lifecycle needs to start a run: its mounts, then its spec.
type runSpec interface {
	mountVolumes(ctx context.Context, c *Container) ([]oci.Mount, error)
	buildSpec(ctx context.Context, c *Container, ms []oci.Mount) (*oci.Options, error)
	volumeMounts
}

// processes is what lifecycle needs of the streams part: the exec instances and healthchecks of a run.
type processes interface {
	startHealth(c *Container)
	failExecs(c *Container)
	execExited(id string, code int)
	forgetExecs(c *Container)
}

// rootFS is what lifecycle needs of the filesystem part.
type rootFS interface {
	copyImageContent(ctx context.Context, c *Container) error
	userResolver
}

// userResolver resolves a user spec in the container's /etc/passwd and /etc/group.
type userResolver interface {
	resolveUser(ctx context.Context, c *Container, spec string, groupAdd []string) (oci.User, error)
}

// netOwners tells whose namespace, /etc files and hostname a container in --network container:<x> mode
// shares (the container itself otherwise).
type netOwners interface {
	netOwner(c *Container) (*Container, error)
	hostnameOf(c *Container) string
}

// releaser ends a container's network attachment.
type releaser interface {
	releaseNetwork(ctx context.Context, c *Container)
}

// attacher is what lifecycle needs of networking: validating networks at create, attaching at start,
// detaching at stop.
type attacher interface {
	prepareNetworks(ctx context.Context, hc *ctypes.HostConfig, cfg *ctypes.Config, nc *ctypes.NetworkingConfig) (map[string]*ctypes.EndpointSettings, error)
	setupNetwork(ctx context.Context, c *Container) (string, error)
	releaser
}

// netView is what ps and inspect need of networking.
type netView interface {
	inspectNetwork(ctx context.Context, c *Container, running bool) *ctypes.NetworkSettings
	networkSettings(ctx context.Context, c *Container, running bool) (map[string]*ctypes.EndpointSettings, map[string][]ctypes.PortBinding, []ctypes.Port)
	onNetwork(c *Container, f interface{ ExactMatch(string, string) bool }) bool
}

// netCounters is what stats need of networking.
type netCounters interface {
	networkStats(c *Container) map[string]ctypes.NetworkStats
}

// restartPolicy is what lifecycle needs of the restart policy at an exit (c.mu held).
type restartPolicy interface {
	shouldRestart(c *Container, code int) bool
	scheduleRestart(ctx context.Context, c *Container, ran time.Duration)
}

// remover removes a stopped container.
type remover interface {
	remove(ctx context.Context, c *Container, force, removeVolumes bool) error
}

// runner is what restore, shutdown and restart policies need of lifecycle.
type runner interface {
	remover
	startLocked(ctx context.Context, c *Container) error
	stop(ctx context.Context, c *Container, sig syscall.Signal, timeout time.Duration) error
	stopTimeout(c *Container, override *int) time.Duration
	finishRemovals(ctx context.Context)
	waitTeardowns(ctx context.Context)
}

// compose builds the parts and wires each to the interfaces of the others it uses.
func compose(cfg *Config, images ImageService, layers LayerStore, volumes VolumeService, ev eventer, cp caps) *Service {
	st := newStore()
	net := &Networking{store: st, cfg: cfg}
	fs := &filesystem{store: st, eventer: ev, cfg: cfg, layers: layers, volumes: volumes}
	streams := &streamer{store: st, eventer: ev, caps: cp, cfg: cfg, users: fs, execs: map[string]*execConfig{}}
	spec := &specBuilder{store: st, caps: cp, cfg: cfg, volumes: volumes, users: fs, owners: net}
	life := &lifecycle{store: st, eventer: ev, cfg: cfg, images: images, layers: layers, volumes: volumes,
		spec: spec, procs: streams, fs: fs, net: net}
	rs := &restorer{store: st, eventer: ev, cfg: cfg, volumes: volumes, life: life, mounts: spec, net: net}
	life.policy = rs
	return &Service{
		cfg: cfg, store: st, life: life, streams: streams, fs: fs, net: net, restore: rs,
		monitor: &monitor{store: st, cfg: cfg, net: net},
		query:   &query{store: st, eventer: ev, layers: layers, net: net, life: life},
	}
}

// ProcessEvent is the libcontainerd event callback.
func (s *Service) ProcessEvent(ctx context.Context, typ ltypes.EventType, info ltypes.EventInfo) {
	s.life.ProcessEvent(ctx, typ, info)
}

// Restore loads the containers at daemon start (restorer.Restore).
func (s *Service) Restore(ctx context.Context) error { return s.restore.Restore(ctx) }

// Shutdown stops the containers at daemon end (restorer.Shutdown).
func (s *Service) Shutdown(ctx context.Context) error { return s.restore.Shutdown(ctx) }

// Networking is the networking part (network connect and disconnect).
func (s *Service) Networking() *Networking { return s.net }
