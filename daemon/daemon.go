// Package daemon is berthd's composition root. New builds the stores and services in the order of
// docs/architecture.md §3, each step a named function; Shutdown undoes them in reverse. It holds no business logic:
// each area's service owns its behaviour, and the wiring of an area lives in daemon/<area>.go.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/moby/sys/atomicwriter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	systemtypes "github.com/berthd/berthd/api/types/system"
	"github.com/berthd/berthd/daemon/config"
	"github.com/berthd/berthd/daemon/events"
	"github.com/berthd/berthd/daemon/network"
	"github.com/berthd/berthd/daemon/system"
	"github.com/berthd/berthd/image/builder"
	"github.com/berthd/berthd/image/buildkit"
	"github.com/berthd/berthd/volume/local"
	volumeservice "github.com/berthd/berthd/volume/service"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

// Daemon holds the running services. Fields are set once by New and read-only afterwards, except the
// reloadable configuration, which cfgMu guards.
type Daemon struct {
	cfgMu sync.RWMutex
	cfg   *config.Config

	id       string
	warnings []string
	events   *events.Events
	system   *system.Service
	ctd      *containerdConn
	volumes  *volumeservice.VolumesService
	imgs     *imagesArea
	plugins  *pluginsArea
	ctrs     *containersArea
	builder  *builder.Builder
	buildkit *buildkit.BuildKit
	nets     *network.Service
	// buildSandboxes are the IDs of BuildKit RUN steps' network sandboxes (buildkit_network.go).
	buildSandboxes sync.Map

	// infoSources let each area add its figures to /info without the system service knowing the area.
	infoSources []func(*system.Sources)

	// diskUsageSources let images and containers fill their rows of /system/df.
	diskUsageSources []func(context.Context, systemtypes.DiskUsageOptions, *systemtypes.DiskUsage) error

	// localScan delivers the outcome of scanLocalVolumes; localRoot is its result, read after it.
	localScan chan error
	localRoot *local.Root

	// closers run in reverse order at Shutdown: the last service built is the first stopped.
	closers []closer

	// securityOptions are /info's SecurityOptions (security.go).
	securityOptions []string
}

type closer struct {
	name string
	fn   func(ctx context.Context) error
}

func (d *Daemon) onShutdown(name string, fn func(ctx context.Context) error) {
	d.closers = append(d.closers, closer{name, fn})
}

// New starts the daemon's services. On error everything already started is shut down again.
func New(ctx context.Context, cfg *config.Config, warnings []string) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, events: events.New(), warnings: warnings}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			d.Shutdown(sctx)
		}
	}()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"directories", d.initDirectories},
		{"local volumes (scan begun)", d.scanLocalVolumes},
		{"containerd", d.initContainerd},
		{"plugins", d.initPlugins},
		{"volumes", d.initVolumes},
		{"images", d.initImages},
		{"networks", d.initNetworks},
		{"containers", d.initContainers},
		{"builder", d.initBuilder},
		{"buildkit", d.initBuildKit},
		{"system", d.initSystem},
		{"metrics", d.initMetrics},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return nil, errors.Wrapf(err, "%s", s.name)
		}
		log.G(ctx).WithField("step", s.name).WithField("took", time.Since(start)).Debug("daemon start-up step done")
	}
	return d, nil
}

// initDirectories creates the data root (0711: others may traverse to volume data, not list it), the exec
// root (0700) and a fresh <root>/tmp, and loads or creates the engine ID.
func (d *Daemon) initDirectories(ctx context.Context) error {
	if err := os.MkdirAll(d.cfg.Root, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(d.cfg.Root, 0o711); err != nil {
		return err
	}
	if err := os.MkdirAll(d.cfg.ExecRoot, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(d.cfg.ExecRoot, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(d.cfg.Root, "tmp")
	if _, err := os.Stat(tmp); err == nil {
		// Renaming first keeps start-up fast however much a crashed run left behind.
		old := tmp + "-old"
		os.RemoveAll(old)
		if err := os.Rename(tmp, old); err == nil {
			go os.RemoveAll(old)
		}
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	os.Setenv("TMPDIR", tmp)
	id, err := loadOrCreateID(filepath.Join(d.cfg.Root, "engine-id"))
	if err != nil {
		return err
	}
	d.id = id
	return nil
}

func loadOrCreateID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	h := hex.EncodeToString(buf)
	id := strings.Join([]string{h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]}, "-")
	if err := atomicwriter.WriteFile(path, []byte(id), 0o600); err != nil {
		return "", err
	}
	return id, nil
}

// Shutdown stops services in reverse start order. Each step gets what is left of ctx; a step that fails
// or overruns is logged and the next one still runs, so a hung service cannot keep the rest running.
func (d *Daemon) Shutdown(ctx context.Context) {
	for i := len(d.closers) - 1; i >= 0; i-- {
		c := d.closers[i]
		if err := c.fn(ctx); err != nil {
			log.G(ctx).WithError(err).WithField("step", c.name).Warn("shutdown step failed")
		}
	}
	d.closers = nil
}

// Config returns a copy of the current configuration.
func (d *Daemon) Config() config.Config {
	d.cfgMu.RLock()
	defer d.cfgMu.RUnlock()
	return *d.cfg
}

// Reload applies the reloadable settings of next and emits the `daemon reload` event.
func (d *Daemon) Reload(next *config.Config) {
	d.cfgMu.Lock()
	attrs := d.cfg.ApplyReload(next)
	d.cfgMu.Unlock()
	d.reloadRegistries(next)
	attrs["name"] = hostname()
	d.events.Log("reload", "daemon", eventActor(d.id, attrs))
}

// Events is the daemon's event bus.
func (d *Daemon) Events() *events.Events { return d.events }

// ID is the engine ID.
func (d *Daemon) ID() string { return d.id }

func hostname() string {
	h, _ := os.Hostname()
	return h
}
