package daemon

import (
	"context"

	"github.com/berthd/berthd/daemon/system"
	volumeservice "github.com/berthd/berthd/volume/service"
)

// initVolumes opens the volume service (design.md §3 step 4): driver store with `local`, metadata.db,
// restore. Records of plugin drivers are resolved in the background, so start-up never waits on a plugin.
func (d *Daemon) initVolumes(ctx context.Context) error {
	svc, err := volumeservice.NewVolumeService(ctx, volumeservice.Config{Root: d.cfg.Root}, d.PluginGetter(), d.events)
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
