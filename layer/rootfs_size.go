package layer

import (
	"context"

	"github.com/pkg/errors"
)

// RootFSSize is the disk usage of the layer and every layer below it: the container's whole root file
// system, what dockerd reports as SizeRootFs.
func (s *Store) RootFSSize(ctx context.Context, key string) (int64, error) {
	ctx = s.ctx(ctx)
	sn := s.sn()
	var total int64
	for k := key; k != ""; {
		u, err := sn.Usage(ctx, k)
		if err != nil {
			return 0, errors.Wrapf(err, "usage of layer %s", k)
		}
		total += u.Size
		info, err := sn.Stat(ctx, k)
		if err != nil {
			return 0, errors.Wrapf(err, "stat of layer %s", k)
		}
		k = info.Parent
	}
	return total, nil
}
