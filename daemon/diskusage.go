package daemon

import (
	"context"

	systemtypes "github.com/berthd/berthd/api/types/system"
)

// DiskUsage answers /system/df from each area's own figures; an area not wired yet contributes an empty
// list, never an error.
func (d *Daemon) DiskUsage(ctx context.Context, opts systemtypes.DiskUsageOptions) (*systemtypes.DiskUsage, error) {
	du := &systemtypes.DiskUsage{Images: []any{}, Containers: []any{}, Volumes: []any{}, BuildCache: []any{}}
	if opts.Volumes && d.volumes != nil {
		vols, err := d.VolumesDiskUsage(ctx)
		if err != nil {
			return nil, err
		}
		du.Volumes = vols
	}
	for _, add := range d.diskUsageSources {
		if err := add(ctx, opts, du); err != nil {
			return nil, err
		}
	}
	return du, nil
}
