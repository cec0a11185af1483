package daemon

import (
	"context"
	"path/filepath"

	"github.com/berthd/berthd/daemon/system"
	"github.com/berthd/berthd/volume/local"
	volumeservice "github.com/berthd/berthd/volume/service"
	"github.com/pkg/errors"
)

// initVolumes opens the volume service (docs/architecture.md §3): driver store with `local`, metadata.db,
// restore. Records of plugin drivers are resolved in the background, so start-up never waits on a plugin.
// scanLocalVolumes starts reading the local volumes' directories, which needs neither containerd nor the
// plugins, so that it overlaps their start instead of following it (thousands of volumes take tens of
// milliseconds). initVolumes collects it.
func (d *Daemon) scanLocalVolumes(ctx context.Context) error {
	ch := make(chan error, 1)
	d.localScan = ch
	go func() {
		r, err := local.New(ctx, filepath.Join(d.cfg.Root, "volumes"))
		d.localRoot = r
		ch <- err
	}()
	return nil
}

func (d *Daemon) initVolumes(ctx context.Context) error {
	if err := <-d.localScan; err != nil {
		return err
	}
	if d.plugins == nil {
		return errors.New("volumes: the plugins step must run first (volume drivers may be plugins)")
	}
	svc, err := volumeservice.NewVolumeService(ctx, volumeservice.Config{Root: d.cfg.Root, Local: d.localRoot}, d.plugins.store, d.events)
	if err != nil {
		return err
	}
	d.volumes = svc
	d.onShutdown("volumes", func(context.Context) error { return svc.Shutdown() })
	d.infoSources = append(d.infoSources, func(src *system.Sources) { src.VolumeDrivers = svc.GetDriverList })
	return nil
}

// VolumesService is the volume router's backend and the containers' volume service.
func (d *Daemon) VolumesService() *volumeservice.VolumesService { return d.volumes }

// VolumesDiskUsage is the Volumes part of /system/df: local volumes without mount options, each with
// UsageData{Size, RefCount}, as dockerd reports them.
func (d *Daemon) VolumesDiskUsage(ctx context.Context) ([]any, error) {
	vols, err := d.volumes.LocalVolumesSize(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(vols))
	for _, v := range vols {
		out = append(out, v)
	}
	return out, nil
}
