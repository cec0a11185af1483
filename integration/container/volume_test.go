package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/volplugin"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestVolumes(t *testing.T) {
	d := newDaemon(t)

	// Named: auto-created, shared between containers, kept by --rm.
	mustDocker(t, d, "run", "--rm", "-v", "vol:/d", "busybox", "sh", "-c", "echo data > /d/f")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "-v", "vol:/d", "busybox", "cat", "/d/f"), "data")
	assert.Equal(t, mustDocker(t, d, "volume", "ls", "-q"), "vol")

	// Anonymous: removed by --rm, and by rm -v, kept by plain rm.
	mustDocker(t, d, "run", "--rm", "-v", "/anon", "busybox", "touch", "/anon/x")
	assert.Equal(t, mustDocker(t, d, "volume", "ls", "-q"), "vol")
	mustDocker(t, d, "create", "--name", "a1", "-v", "/anon", "busybox", "true")
	assert.Equal(t, len(strings.Fields(mustDocker(t, d, "volume", "ls", "-q"))), 2)
	mustDocker(t, d, "rm", "-v", "a1")
	assert.Equal(t, mustDocker(t, d, "volume", "ls", "-q"), "vol")

	// A volume used by a stopped container cannot be removed.
	id := mustDocker(t, d, "create", "--name", "user", "-v", "vol:/d", "busybox", "true")
	res := d.Docker(t, "volume", "rm", "vol")
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "volume is in use"))
	assert.Assert(t, is.Contains(res.Stderr, id))

	// --volumes-from.
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--volumes-from", "user", "busybox", "cat", "/d/f"), "data")
	mustDocker(t, d, "rm", "user")
	mustDocker(t, d, "volume", "rm", "vol")

	// Bind, read-only.
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "h"), []byte("host"), 0o644))
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "-v", dir+":/b:ro", "busybox", "cat", "/b/h"), "host")
	res = d.Docker(t, "run", "--rm", "-v", dir+":/b:ro", "busybox", "touch", "/b/x")
	assert.Assert(t, res.ExitCode != 0)
	mustDocker(t, d, "run", "--rm", "--mount", "type=bind,source="+dir+",target=/b", "busybox", "touch", "/b/x")
	_, err := os.Stat(filepath.Join(dir, "x"))
	assert.NilError(t, err)

	// --mount volume and tmpfs.
	mustDocker(t, d, "run", "--rm", "--mount", "type=volume,source=mv,target=/m", "busybox", "touch", "/m/y")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--mount", "type=volume,source=mv,target=/m,readonly", "busybox", "ls", "/m"), "y")
	out := mustDocker(t, d, "run", "--rm", "--mount", "type=tmpfs,target=/t", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts")
	assert.Assert(t, is.Contains(out, "tmpfs"))

	// Image content is copied into a new volume.
	mustDocker(t, d, "run", "--rm", "-v", "binvol:/bin", "busybox", "true")
	assert.Assert(t, is.Contains(mustDocker(t, d, "run", "--rm", "-v", "binvol:/x", "busybox", "ls", "/x"), "busybox"))
}

func TestPluginVolumeMountPairs(t *testing.T) {
	d := newDaemon(t)
	vp := volplugin.Start(t, d)
	mustDocker(t, d, "volume", "create", "-d", "volplugin", "pv")
	mustDocker(t, d, "run", "--rm", "-v", "pv:/p", "busybox", "sh", "-c", "echo x > /p/f")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "-v", "pv:/p", "busybox", "cat", "/p/f"), "x")
	id := mustDocker(t, d, "run", "-d", "-v", "pv:/p", "busybox", "sleep", "100")
	assert.Equal(t, vp.Calls("Mount", "pv")-vp.Calls("Unmount", "pv"), 1)
	mustDocker(t, d, "rm", "-f", id)
	assert.Equal(t, vp.Calls("Mount", "pv"), vp.Calls("Unmount", "pv"))
	assert.Assert(t, vp.Calls("Mount", "pv") >= 3)
}
