package layer

import (
	"context"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func TestChoose(t *testing.T) {
	ctx := context.Background()
	avail := map[string]string{"overlayfs": "", "native": "", "btrfs": "not a btrfs filesystem"}

	name, err := choose(ctx, avail, "")
	assert.NilError(t, err)
	assert.Equal(t, name, "overlayfs")

	name, err = choose(ctx, map[string]string{"overlayfs": "overlay not supported", "native": ""}, "")
	assert.NilError(t, err)
	assert.Equal(t, name, "native", "an unsupported driver on the priority list is skipped")

	name, err = choose(ctx, avail, "vfs")
	assert.NilError(t, err)
	assert.Equal(t, name, "native", "dockerd's names are aliases")
	name, err = choose(ctx, avail, "overlay2")
	assert.NilError(t, err)
	assert.Equal(t, name, "overlayfs")

	_, err = choose(ctx, avail, "btrfs")
	assert.Check(t, errdefs.IsFailedPrecondition(err), "an explicitly requested unsupported driver is an error")
	assert.ErrorContains(t, err, "not a btrfs filesystem")
	_, err = choose(ctx, avail, "zfs")
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, err = choose(ctx, map[string]string{"overlayfs": "no", "native": "no"}, "")
	assert.Check(t, errdefs.IsFailedPrecondition(err))
}
