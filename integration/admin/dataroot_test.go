package admin

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestDataRootMoves: an admin stops the daemon, moves the data root to another disk and starts with the
// new --data-root: images, volumes (with their data), containers and their logs are all there.
func TestDataRootMoves(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "volume", "create", "keep")
	mustDocker(t, d, "run", "--name", "keeper", "-v", "keep:/data", "busybox", "sh", "-c", "echo hello > /data/f; cat /data/f")
	d.Stop(t)

	moved := filepath.Join(d.Dir, "moved-root")
	assert.NilError(t, os.Rename(d.Root, moved))
	d.Root = moved
	d.Start(t)
	assert.Check(t, is.Equal(mustDocker(t, d, "info", "--format", "{{.DockerRootDir}}"), moved))
	assert.Check(t, is.Equal(mustDocker(t, d, "images", "-q", "busybox") != "", true))
	assert.Check(t, is.Equal(mustDocker(t, d, "volume", "inspect", "-f", "{{.Mountpoint}}", "keep"), filepath.Join(moved, "volumes", "keep", "_data")))
	assert.Check(t, is.Equal(mustDocker(t, d, "logs", "keeper"), "hello"))
	assert.Check(t, is.Equal(mustDocker(t, d, "start", "-a", "keeper"), "hello"))
	assert.Check(t, is.Equal(mustDocker(t, d, "run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f"), "hello"))
}
