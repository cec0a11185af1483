package daemon

import (
	"context"
	"os"
	"path/filepath"

	systemtypes "github.com/berthd/berthd/api/types/system"
	"github.com/berthd/berthd/daemon/config"
	"github.com/berthd/berthd/image/buildkit"
)

// initBuildKit starts the embedded BuildKit on berthd's containerd, namespace and snapshotter, with its
// state under <data-root>/buildkit. It runs after the builder step: BuildKit names what it exports
// through the same image service.
func (d *Daemon) initBuildKit(ctx context.Context) error {
	gc, ents, err := buildKitSettings(d.cfg)
	if err != nil {
		return err
	}
	nets, dns := buildKitNetworking(d.nets, d.cfg.NetworkConfig, &d.buildSandboxes)
	// RUN steps go under the containers' cgroup parent, as dockerd's go under /docker/buildkit. BuildKit's
	// runc executor has no systemd cgroup driver: with it, the steps stay where BuildKit puts them.
	cgroupParent := ""
	if d.cfg.CgroupDriver() != config.CgroupDriverSystemd {
		cgroupParent = d.cfg.CgroupParent
		if cgroupParent == "" {
			cgroupParent = "/berth"
		}
	}
	bk, err := buildkit.New(ctx, buildkit.Config{
		GCPolicy:          gc,
		Entitlements:      ents,
		NetworkProviders:  buildkit.NetworkProviders(nets),
		DNS:               dns,
		Root:              filepath.Join(d.cfg.Root, "buildkit"),
		ContainerdAddress: d.ctd.address,
		Namespace:         d.cfg.ContainerdNamespace,
		Snapshotter:       d.imgs.snapshotter,
		CgroupParent:      cgroupParent,
		// dockerd's override of the runc its BuildKit runs (its default runtime is not used there either).
		RuncBinary:         os.Getenv("DOCKER_BUILDKIT_RUNC_COMMAND"),
		InsecureRegistries: d.cfg.InsecureRegistries,
		RegistryMirrors:    d.cfg.RegistryMirrors,
	}, &builderImages{svc: d.imgs.images, st: d.imgs.images.Store()})
	if err != nil {
		return err
	}
	d.buildkit = bk
	d.diskUsageSources = append(d.diskUsageSources, func(ctx context.Context, opts systemtypes.DiskUsageOptions, du *systemtypes.DiskUsage) error {
		return addBuildCacheUsage(ctx, bk, opts, du)
	})
	d.onShutdown("buildkit", func(context.Context) error { return bk.Close() })
	return nil
}

// BuildKit is the embedded BuildKit, for the build router's /grpc, /session and version=2 paths.
func (d *Daemon) BuildKit() *buildkit.BuildKit { return d.buildkit }
