package admin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestDataRootMoves: an admin stops the daemon, moves the data root to another disk and starts with the
// new --data-root: images, volumes (with their data), containers and their logs are all there.
func TestDataRootMoves(t *testing.T) {
	d := daemon.NewWithBusybox(t)
	d.MustDocker(t, "volume", "create", "keep")
	d.MustDocker(t, "run", "--name", "keeper", "-v", "keep:/data", "busybox", "sh", "-c", "echo hello > /data/f; cat /data/f")
	d.Stop(t)

	moved := filepath.Join(d.Dir, "moved-root")
	assert.NilError(t, os.Rename(d.Root, moved))
	d.Root = moved
	d.Start(t)
	assert.Check(t, is.Equal(d.MustDocker(t, "info", "--format", "{{.DockerRootDir}}"), moved))
	assert.Check(t, is.Equal(d.MustDocker(t, "images", "-q", "busybox") != "", true))
	assert.Check(t, is.Equal(d.MustDocker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "keep"), filepath.Join(moved, "volumes", "keep", "_data")))
	assert.Check(t, is.Equal(d.MustDocker(t, "logs", "keeper"), "hello"))
	assert.Check(t, is.Equal(d.MustDocker(t, "start", "-a", "keeper"), "hello"))
	assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f"), "hello"))
}
