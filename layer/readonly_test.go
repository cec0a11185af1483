package layer

import (
	"testing"

	"github.com/containerd/containerd/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestReadOnlyView(t *testing.T) {
	v, err := readOnly(mount.Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(v.Options, []string{"index=off", "lowerdir=/u:/l1:/l2"}))

	v, err = readOnly(mount.Mount{Type: "bind", Source: "/s", Options: []string{"rbind", "rw"}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(v.Options, []string{"rbind", "ro"}))

	v, err = readOnly(mount.Mount{Type: "overlay", Source: "overlay", Options: []string{"workdir=/w", "upperdir=/u"}})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(v.Type, "bind"))
	assert.Check(t, is.DeepEqual(v.Options, []string{"rbind", "ro"}))

	v, err = readOnly(mount.Mount{Type: "btrfs", Source: "/dev/x", Options: []string{"subvolid=5", "rw"}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(v.Options, []string{"subvolid=5", "ro"}))
}
