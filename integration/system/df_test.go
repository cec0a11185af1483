package system

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/volume"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestSystemDfVolumes(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := d.Client(t)
	ctx := context.Background()

	v, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: "dfvol"})
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(v.Mountpoint, "blob"), make([]byte, 4096), 0o644))
	_, err = c.VolumeCreate(ctx, volume.CreateOptions{Name: "tmpvol", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	assert.NilError(t, err)

	du, err := c.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.VolumeObject}})
	assert.NilError(t, err)
	assert.Assert(t, is.Len(du.Volumes, 1), "volumes with mount options are not sized, as in dockerd")
	assert.Check(t, is.Equal(du.Volumes[0].Name, "dfvol"))
	assert.Assert(t, du.Volumes[0].UsageData != nil)
	assert.Check(t, du.Volumes[0].UsageData.Size >= 4096)
	assert.Check(t, is.Equal(du.Volumes[0].UsageData.RefCount, int64(0)))

	res := d.Docker(t, "system", "df", "-v")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Contains(res.Stdout, "Local Volumes space usage:"))
	var row string
	for _, line := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(line, "dfvol ") {
			row = line
		}
	}
	assert.Check(t, is.Contains(row, "4.096kB"), res.Stdout)

	res = d.Docker(t, "system", "df")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Contains(res.Stdout, "Local Volumes"))
}
