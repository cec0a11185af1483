package daemon

import (
	"context"
	"os"

	systemtypes "github.com/berthd/berthd/api/types/system"
	"github.com/berthd/berthd/daemon/system"
	"github.com/berthd/berthd/distribution"
	"github.com/berthd/berthd/image/service"
	"github.com/berthd/berthd/image/store"
	"github.com/berthd/berthd/layer"
	"github.com/containerd/log"
)

// driverEnv picks the storage driver when neither --storage-driver nor daemon.json does (dockerd's
// DOCKER_DRIVER).
const driverEnv = "BERTH_DRIVER"

// imagesArea holds the image side: the chosen snapshotter, containers' RW layers, the image service.
type imagesArea struct {
	snapshotter string
	layers      *layer.Store
	images      *service.Service
	dist        *distribution.Service
}

// initImages (docs/architecture.md §3): choose the snapshotter, then the layer store, the image store over
// containerd, distribution and the image service.
func (d *Daemon) initImages(ctx context.Context) error {
	client := d.ctd.client
	ns := d.cfg.ContainerdNamespace
	requested := d.cfg.StorageDriver
	if requested == "" {
		requested = os.Getenv(driverEnv)
	}
	sn, err := layer.SelectSnapshotter(ctx, client, requested)
	if err != nil {
		return err
	}
	log.G(ctx).WithField("driver", sn).Info("storage driver selected")
	st, err := store.New(ctx, store.Config{Namespace: ns, Snapshotter: sn}, client)
	if err != nil {
		return err
	}
	dist := distribution.New(client, distribution.Config{Namespace: ns, Insecure: d.cfg.InsecureRegistries, UserAgent: "berthd/" + system.Version,
		Mirrors: mirrors(d.cfg), MaxConcurrentDownloads: d.cfg.MaxConcurrentDownloads, MaxConcurrentUploads: d.cfg.MaxConcurrentUploads})
	svc, err := service.New(ctx, service.Config{DockerVersion: system.Version}, st, dist, d.events)
	if err != nil {
		return err
	}
	d.imgs = &imagesArea{
		snapshotter: sn,
		layers:      layer.New(client, layer.Config{Namespace: ns, Snapshotter: sn}),
		images:      svc,
		dist:        dist,
	}
	d.infoSources = append(d.infoSources, func(src *system.Sources) {
		src.StorageDriver = func() (string, [][2]string) { return sn, layer.DriverStatus(sn) }
		src.Images = svc.CountImages
	})
	d.diskUsageSources = append(d.diskUsageSources, func(ctx context.Context, opts systemtypes.DiskUsageOptions, du *systemtypes.DiskUsage) error {
		if !opts.Images {
			return nil
		}
		size, list, err := svc.DiskUsage(ctx)
		if err != nil {
			return err
		}
		du.LayersSize = size
		for _, s := range list {
			du.Images = append(du.Images, s)
		}
		return nil
	})
	return nil
}

// ImageService is the image router's backend; containers use RunConfig and SetContainerUsage.
func (d *Daemon) ImageService() *service.Service { return d.imgs.images }

// Layers is the containers' RW layer store.
func (d *Daemon) Layers() *layer.Store { return d.imgs.layers }
