// Package buildkit owns berthd's embedded BuildKit (v0.17, the newest release on the containerd 1.7 client
// berthd uses, which also drives Debian 12's containerd 1.6): the controller (solver, build cache, build
// history) under <data-root>/buildkit, one containerd worker on berthd's own containerd, namespace and
// snapshotter (so an exported image is a berthd image, with no copy), the "moby" exporter that names images
// through the image service (one plain single-platform image per build: attestations dropped, several
// platforms refused), the session manager, and the gRPC server the build router hands hijacked /grpc
// connections to. The controller starts in the background; users of it wait in Ready. Beside them: POST
// /build?version=2 (legacy.go: the query mapped to the Dockerfile frontend, BuildKit's status streamed as
// JSON messages, cancellation by build ID), the cache's disk usage and prune (prune.go), and daemon.json's
// builder.gc turned into BuildKit's GC policy (config.go).
//
// It must not import daemon, api/server or containerd's client (hack/validate); what it needs of the
// image service it declares as a small interface (Images), and RUN network modes come in as BuildKit
// network providers (Config.NetworkProviders).
package buildkit

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/executor/oci"
	"github.com/moby/buildkit/executor/resources"
	"github.com/moby/buildkit/executor/runcexecutor"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/solver/pb"
	httpsource "github.com/moby/buildkit/source/http"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/moby/buildkit/util/network"
	"github.com/moby/buildkit/util/network/netproviders"
	"github.com/moby/buildkit/util/resolver"
	bkversion "github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	bkcontainerd "github.com/moby/buildkit/worker/containerd"
	"github.com/moby/buildkit/worker/label"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
)

// Config configures the embedded BuildKit.
type Config struct {
	// Root is <data-root>/buildkit: cache.db, history.db and the worker's metadata and cache mounts.
	Root string
	// ContainerdAddress, Namespace and Snapshotter are berthd's own.
	ContainerdAddress string
	Namespace         string
	Snapshotter       string
	// GCPolicy is the cache's garbage-collection policy; nil keeps the cache until pruned.
	GCPolicy []client.PruneInfo
	// Labels are extra worker labels (e.g. the host-gateway IP).
	Labels map[string]string
	// Entitlements are those builds may ask for (daemon.json builder.entitlements); nil means dockerd's
	// default, network.host only.
	Entitlements []string
	// InsecureRegistries and RegistryMirrors are berthd's registry options (daemon.json names), for
	// base images, --push and registry caches.
	InsecureRegistries []string
	RegistryMirrors    []string
	// RuncBinary runs RUN steps ("runc" from PATH when empty).
	RuncBinary string
	// CgroupParent puts RUN steps' cgroups under <CgroupParent>/buildkit/<id> (dockerd: /docker/buildkit);
	// empty leaves them to BuildKit (/buildkit/<id>).
	CgroupParent string
	// NetworkProviders replace or add RUN network modes (pb.NetMode_UNSET is "default"); modes not given
	// keep BuildKit's own (host, none; default = host).
	NetworkProviders map[pb.NetMode]network.Provider
	// DNS is the daemon's resolver configuration for RUN steps' resolv.conf; nil: the host's.
	DNS *DNSConfig
}

// Images is what the exporter needs of the image service: name an image it has stored.
type Images interface {
	// Tag points ref (a normalized, tagged reference) at the image whose config digest is id.
	Tag(ctx context.Context, id, ref string) error
}

// BuildKit is the embedded BuildKit server. Its controller starts in the background (opening the cache
// takes a noticeable share of berthd's start-up once it holds builds); everything that needs it waits in
// Ready, bounded by startTimeout.
type BuildKit struct {
	sessions *session.Manager
	h2       *http2.Server

	ready   chan struct{} // closed when start has finished, well or not
	initErr error         // start's error, readable after ready
	// Set by start before ready is closed; read only after it.
	ctrl  *control.Controller
	exec  *trackedExecutor
	grpc  *grpc.Server
	dbs   []*bolt.DB
	cache *bboltcachestorage.Store

	// conns are the hijacked /grpc connections being served; Close ends them, since the HTTP server's
	// shutdown no longer tracks a hijacked connection.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	// The version=2 path (legacy.go).
	root          string
	hostGatewayIP string
	entitlements  []string
	jobs          jobs
	uploads       uploads
	bodies        *bodies
}

// stepStopTimeout bounds how long Close waits for cancelled RUN steps to be killed.
const stepStopTimeout = 10 * time.Second

// startTimeout bounds how long a request waits for the controller to come up.
const startTimeout = 60 * time.Second

// New creates BuildKit's state directory and session manager and starts the controller over berthd's
// containerd in the background; a failure to start is logged and returned by Ready.
func New(ctx context.Context, cfg Config, imgs Images) (*BuildKit, error) {
	if err := os.MkdirAll(cfg.Root, 0o711); err != nil {
		return nil, err
	}
	removeSpooled(cfg.Root)
	sm, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	setVersion()
	b := &BuildKit{sessions: sm, h2: &http2.Server{}, conns: map[net.Conn]struct{}{}, ready: make(chan struct{}),
		bodies: newBodies(), root: cfg.Root, hostGatewayIP: cfg.Labels[hostGatewayLabel], entitlements: cfg.Entitlements}
	if b.entitlements == nil {
		b.entitlements = []string{string(entitlements.EntitlementNetworkHost)}
	}
	// The daemon's start-up context may end once New returns; BuildKit's background work must not.
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer close(b.ready)
		start := time.Now()
		if err := b.start(ctx, cfg, imgs); err != nil {
			b.initErr = errdefs.ErrUnavailable.WithMessage("buildkit failed to start: " + err.Error())
			log.G(ctx).WithError(err).Error("buildkit failed to start")
			b.closeStores()
			return
		}
		log.G(ctx).WithField("root", cfg.Root).WithField("took", time.Since(start)).Info("buildkit started")
	}()
	return b, nil
}

// Ready waits until the controller has started (bounded by startTimeout and ctx) and returns why it did
// not if it failed: Unavailable.
func (b *BuildKit) Ready(ctx context.Context) error {
	select {
	case <-b.ready:
		return b.initErr
	default:
	}
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case <-b.ready:
		return b.initErr
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errdefs.ErrUnavailable.WithMessage("buildkit is still starting")
	}
}

func (b *BuildKit) start(ctx context.Context, cfg Config, imgs Images) error {
	history, err := bolt.Open(filepath.Join(cfg.Root, "history.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return errors.Wrap(err, "open build history")
	}
	b.dbs = append(b.dbs, history)
	if b.cache, err = bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db")); err != nil {
		return errors.Wrap(err, "open build cache")
	}

	labels := map[string]string{label.Snapshotter: cfg.Snapshotter}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	wo, err := bkcontainerd.NewWorkerOpt(bkcontainerd.WorkerOptions{
		Root:            cfg.Root,
		Address:         cfg.ContainerdAddress,
		SnapshotterName: cfg.Snapshotter,
		Namespace:       cfg.Namespace,
		Labels:          labels,
		CgroupParent:    cfg.CgroupParent,
		NetworkOpt:      netproviders.Opt{Mode: "host"},
		DNS:             cfg.DNS.oci(),
	})
	if err != nil {
		return err
	}
	wo.Platforms = uniquePlatforms(wo.Platforms)
	for mode, p := range cfg.NetworkProviders {
		wo.NetworkProviders[mode] = p
	}
	// RUN steps run through runc directly, as in dockerd: a containerd container, task and shim per step
	// cost about 0.2 s more each. The spec is BuildKit's either way (same generator and defaults).
	runc := cfg.RuncBinary
	if runc == "" {
		runc = "runc"
	}
	// The executor records each step's cgroup usage in the build history (and dereferences it).
	rm, err := resources.NewMonitor()
	if err != nil {
		return err
	}
	runcExec, err := runcexecutor.New(runcexecutor.Opt{
		ResourceMonitor:     rm,
		Root:                filepath.Join(cfg.Root, "executor"),
		CommandCandidates:   []string{runc},
		DefaultCgroupParent: cfg.CgroupParent,
		ProcessMode:         oci.ProcessSandbox,
		DNS:                 cfg.DNS.oci(),
	}, wo.NetworkProviders) // the providers cfg.NetworkProviders were merged into above
	if err != nil {
		return err
	}
	b.exec = &trackedExecutor{Executor: runcExec}
	wo.Executor = b.exec
	wo.GCPolicy = cfg.GCPolicy
	wo.RegistryHosts = resolver.NewRegistryConfig(registryConfig(cfg.InsecureRegistries, cfg.RegistryMirrors))
	bw, err := base.NewWorker(ctx, wo)
	if err != nil {
		return err
	}
	// POST /build?version=2 with the context in the request body hands it to the HTTP source.
	hs, err := httpsource.NewSource(httpsource.Opt{CacheAccessor: bw.CacheMgr, Transport: b.bodies})
	if err != nil {
		return err
	}
	bw.SourceManager.Register(hs)
	wc := &worker.Controller{}
	if err := wc.Add(&mobyWorker{Worker: bw, images: imgs}); err != nil {
		return err
	}
	gwf, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return err
	}
	b.ctrl, err = control.NewController(control.Opt{
		SessionManager:   b.sessions,
		WorkerController: wc,
		Frontends: map[string]frontend.Frontend{
			"dockerfile.v0": forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build),
			"gateway.v0":    gwf,
		},
		CacheManager: solver.NewCacheManager(ctx, "local", b.cache, worker.NewCacheResultStorage(wc)),
		CacheStore:   b.cache,
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"local":    localremotecache.ResolveCacheImporterFunc(b.sessions),
			"registry": registryremotecache.ResolveCacheImporterFunc(b.sessions, wo.ContentStore, wo.RegistryHosts),
		},
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
			"local":    localremotecache.ResolveCacheExporterFunc(b.sessions),
			"registry": registryremotecache.ResolveCacheExporterFunc(b.sessions, wo.RegistryHosts),
		},
		Entitlements: b.entitlements,
		HistoryDB:    history,
		LeaseManager: wo.LeaseManager,
		ContentStore: wo.ContentStore,
	})
	if err != nil {
		return err
	}
	b.grpc = grpc.NewServer()
	b.ctrl.Register(b.grpc)
	return nil
}

var versionOnce sync.Once

// setVersion fills BuildKit's version (normally set at link time, which `go build` does not do) from the
// module version berthd was built with, so that buildx shows which BuildKit serves it.
func setVersion() {
	versionOnce.Do(func() {
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		for _, m := range bi.Deps {
			if m.Path == bkversion.Package {
				if m.Replace != nil {
					m = m.Replace
				}
				if bkversion.Version == "v0.0.0+unknown" && m.Version != "" {
					bkversion.Version = m.Version
				}
				return
			}
		}
	})
}

// uniquePlatforms normalizes containerd's runtime platforms and drops repeats (each runtime plugin
// lists the host's), so `buildx ls` shows each once.
func uniquePlatforms(ps []ocispec.Platform) []ocispec.Platform {
	var out []ocispec.Platform
	seen := map[string]bool{}
	for _, p := range ps {
		p = platforms.Normalize(p)
		if k := platforms.Format(p); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// ServeConn serves BuildKit's gRPC API (HTTP/2 with prior knowledge) on a connection the build router
// hijacked from POST /grpc, until the client closes it. The caller has had Ready return nil.
func (b *BuildKit) ServeConn(ctx context.Context, conn net.Conn) {
	if b.Ready(ctx) != nil {
		conn.Close()
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		conn.Close()
		return
	}
	b.conns[conn] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.conns, conn)
		b.mu.Unlock()
	}()
	b.h2.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: b.grpc})
}

// HandleSession takes over POST /session: the session manager hijacks the request and calls back into the
// client (files, secrets, ssh, auth) over it for as long as the client keeps it open.
func (b *BuildKit) HandleSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return b.sessions.HandleHTTPRequest(ctx, w, r)
}

// Close ends the clients' connections (their builds are cancelled), stops the controller and closes
// BuildKit's databases. It waits for a start still under way (bounded by containerd's dial timeout).
func (b *BuildKit) Close() error {
	<-b.ready
	if b.initErr != nil {
		return nil
	}
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	if b.grpc != nil {
		b.grpc.Stop()
	}
	// The builds' contexts are cancelled now; their RUN steps get killed, which Close waits for (bounded:
	// shutdown must end).
	if b.exec != nil && !b.exec.wait(stepStopTimeout) {
		log.L.Warn("buildkit: RUN steps still running at shutdown")
	}
	var err error
	if b.ctrl != nil {
		err = b.ctrl.Close()
	}
	b.closeStores()
	return err
}

func (b *BuildKit) closeStores() {
	if b.cache != nil {
		_ = b.cache.Close()
	}
	for _, db := range b.dbs {
		_ = db.Close()
	}
}
