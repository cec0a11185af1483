package image

import (
	"os"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestStorageDriverSelection(t *testing.T) {
	// Default: the first supported of the priority list.
	d := daemon.New(t)
	d.Start(t)
	c := cli{t, d}
	def := c.ok("info", "-f", "{{.Driver}}")
	assert.Check(t, def == "overlayfs" || def == "native", def)
	assert.Check(t, is.Contains(c.ok("info", "-f", "{{json .DriverStatus}}"), "io.containerd.snapshotter.v1"))

	// Images survive a restart, and stay usable.
	_, save := fixtures(t)
	c.ok("load", "-i", save)
	id := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox")
	d.Restart(t)
	assert.Equal(t, c.ok("image", "inspect", "-f", "{{.Id}}", "busybox"), id)
	assert.Equal(t, c.ok("info", "-f", "{{.Images}}"), "1")
	d.Stop(t)

	// dockerd's name for the same thing, on the command line.
	d2 := daemon.New(t)
	d2.Start(t, "--storage-driver", "vfs")
	assert.Equal(t, cli{t, d2}.ok("info", "-f", "{{.Driver}}"), "native")
	cli{t, d2}.ok("load", "-i", save)
	d2.Stop(t)

	// daemon.json, and the environment when nothing else says.
	d3 := daemon.New(t)
	assert.NilError(t, os.WriteFile(d3.ConfigFile, []byte(`{"storage-driver":"native"}`), 0o644))
	d3.Start(t)
	assert.Equal(t, cli{t, d3}.ok("info", "-f", "{{.Driver}}"), "native")
	d3.Stop(t)
	d4 := daemon.New(t)
	d4.Env = append(d4.Env, "BERTH_DRIVER=native")
	d4.Start(t)
	assert.Equal(t, cli{t, d4}.ok("info", "-f", "{{.Driver}}"), "native")
	d4.Stop(t)

	// An explicitly requested driver containerd cannot use is a start-up error.
	d5 := daemon.New(t)
	err := d5.StartWithError("-H", d5.Host(), "--storage-driver", "nosuchdriver")
	assert.Assert(t, err != nil)
	assert.Check(t, strings.Contains(d5.Log(), "storage driver nosuchdriver is not supported"), d5.Log())
}
