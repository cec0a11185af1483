package admin

import (
	"syscall"
	"testing"
	"time"

	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestPullThroughRegistryMirror: with registry-mirrors, a Docker Hub image is pulled from the mirror (a
// second local registry holding library/busybox; the machine has no route to Docker Hub, so the pull can
// only succeed through the mirror). The daemon.json form is used, as admins set it.
func TestPullThroughRegistryMirror(t *testing.T) {
	mirror := regtest.StartRegistry(t, "", "")
	src := daemon.NewWithBusybox(t)
	src.MustDocker(t, "tag", "busybox", mirror+"/library/busybox:mirrored")
	src.MustDocker(t, "push", mirror+"/library/busybox:mirrored")
	want := src.MustDocker(t, "image", "inspect", "-f", "{{.Id}}", "busybox")

	d := daemon.New(t)
	writeConfig(t, d, `{"registry-mirrors": ["http://`+mirror+`"], "max-concurrent-downloads": 1}`)
	d.Start(t)
	out := d.MustDocker(t, "pull", "busybox:mirrored")
	assert.Check(t, is.Contains(out, "Status: Downloaded newer image for busybox:mirrored"))
	assert.Check(t, is.Equal(d.MustDocker(t, "image", "inspect", "-f", "{{.Id}}", "busybox:mirrored"), want))
	assert.Check(t, is.Equal(d.MustDocker(t, "info", "--format", "{{.RegistryConfig.Mirrors}}"), "[http://"+mirror+"/]"))

	// A name on another registry never goes to the mirror.
	res := d.Docker(t, "pull", "127.0.0.1:1/library/busybox:mirrored")
	assert.Check(t, res.ExitCode != 0, res.Combined())
}

// TestRegistryMirrorsReload: registry-mirrors added to daemon.json take effect on SIGHUP, as in dockerd.
func TestRegistryMirrorsReload(t *testing.T) {
	mirror := regtest.StartRegistry(t, "", "")
	src := daemon.NewWithBusybox(t)
	src.MustDocker(t, "tag", "busybox", mirror+"/library/busybox:reloaded")
	src.MustDocker(t, "push", mirror+"/library/busybox:reloaded")

	d := daemon.New(t)
	d.Start(t)
	assert.Check(t, is.Equal(d.MustDocker(t, "info", "--format", "{{.RegistryConfig.Mirrors}}"), "[]"))
	writeConfig(t, d, `{"registry-mirrors": ["http://`+mirror+`"]}`)
	d.Signal(t, syscall.SIGHUP)
	daemon.WaitFor(t, 20*time.Second, "mirror reloaded", func() bool {
		return d.Docker(t, "info", "--format", "{{.RegistryConfig.Mirrors}}").Stdout == "[http://"+mirror+"/]\n"
	})
	d.MustDocker(t, "pull", "busybox:reloaded")
}
