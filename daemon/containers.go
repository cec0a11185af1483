package daemon

import (
	"context"
	"os"
	"path/filepath"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	systemtypes "github.com/berthd/berthd/api/types/system"
	"github.com/berthd/berthd/daemon/containers"
	"github.com/berthd/berthd/daemon/system"
	"github.com/berthd/berthd/libcontainerd/remote"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	"github.com/pkg/errors"
)

// initPaths are where Debian puts tini; the static one runs in any image (dockerd's docker-init).
var initPaths = []string{"/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init"}

type containersArea struct {
	svc    *containers.Service
	client ltypes.Client
}

// initContainers (docs/architecture.md §3): the container service over its own libcontainerd client (whose
// event stream feeds the service), then restore: records loaded, running tasks reattached or stopped,
// volume references rebuilt, before the API answers.
func (d *Daemon) initContainers(ctx context.Context) error {
	// The services containers are built on must exist: a nil one would only fail on first use.
	if d.volumes == nil || d.imgs == nil {
		return errors.New("containers: the volumes and images steps must run first")
	}
	defaults, err := containerDefaults(d.cfg)
	if err != nil {
		return err
	}
	initPath := d.cfg.InitPath
	for _, p := range initPaths {
		if initPath != "" {
			break
		}
		if _, err := os.Stat(p); err == nil {
			initPath = p
			break
		}
	}
	sec, secOpts, secWarnings, err := containerSecurity(d.cfg)
	if err != nil {
		return err
	}
	d.securityOptions = secOpts
	d.warnings = append(d.warnings, secWarnings...)
	svc, err := containers.New(containers.Config{
		Security:     sec,
		Root:         filepath.Join(d.cfg.Root, "containers"),
		ExecRoot:     filepath.Join(d.cfg.ExecRoot, "containers"),
		LiveRestore:  d.cfg.LiveRestore,
		InitPath:     initPath,
		Defaults:     defaults,
		CgroupParent: d.cfg.CgroupParent,
		Networks:     d.nets,
	}, d.imgs.images, d.imgs.layers, d.volumes, d.events)
	if err != nil {
		return err
	}
	client, err := remote.New(ctx, d.ctd.address, d.cfg.ContainerdNamespace, svc.ProcessEvent)
	if err != nil {
		return err
	}
	svc.SetClient(client)
	svc.SetImageStore(d.imgs.images.Store())
	d.ctrs = &containersArea{svc: svc, client: client}
	d.onShutdown("containers", func(ctx context.Context) error {
		err := svc.Shutdown(ctx)
		client.Close()
		return err
	})
	if err := svc.Restore(ctx); err != nil {
		return err
	}
	d.reconcileNetworks(ctx)
	d.imgs.images.SetContainerUsage(svc.Backend())
	d.infoSources = append(d.infoSources, func(src *system.Sources) { src.Containers = svc.Backend().Counts })
	d.diskUsageSources = append(d.diskUsageSources, func(ctx context.Context, opts systemtypes.DiskUsageOptions, du *systemtypes.DiskUsage) error {
		if !opts.Containers {
			return nil
		}
		list, err := svc.Backend().ContainerList(ctx, ctypes.ListOptions{All: true, Size: true})
		if err != nil {
			return err
		}
		for _, c := range list {
			du.Containers = append(du.Containers, c)
		}
		return nil
	})
	return nil
}

// ContainerBackend is the container router's backend.
func (d *Daemon) ContainerBackend() *containers.Backend { return d.ctrs.svc.Backend() }

// ContainerStopTimeout is the longest container stop timeout (for the shutdown bound).
func (d *Daemon) ContainerStopTimeout() time.Duration {
	if d.ctrs == nil {
		return 0
	}
	return d.ctrs.svc.Backend().MaxStopTimeout()
}
