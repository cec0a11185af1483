package plugin

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// step runs a docker command that must succeed and returns the plugin calls it caused.
func (vp *volplugin) step(t *testing.T, d *daemon.Daemon, args ...string) []string {
	t.Helper()
	before := len(vp.calls(t))
	d.MustDocker(t, args...)
	return vp.calls(t)[before:]
}

func withoutGets(calls []string) []string {
	out := []string{}
	for _, c := range calls {
		if !strings.HasPrefix(c, "VolumeDriver.Get ") {
			out = append(out, c)
		}
	}
	return out
}

// TestVolumePluginTranscript drives a go-plugins-helpers plugin through the CLI and compares what the
// plugin was asked with what dockerd (27.x, same plugin, same commands) asks it. dockerd's transcript:
//
//	volume create -d volplugin v1   Plugin.Activate, Capabilities, Get v1, Create v1
//	volume inspect v1               Get v1
//	volume ls                       List
//	run --rm -v v1:/data ... true   Get v1, Get v1, Mount v1, Get v1, Unmount v1
//	run -d --name c1 -v v1:/data    Get v1, Get v1, Mount v1
//	stop c1                         Get v1, Unmount v1
//	start c1                        Get v1, Mount v1
//	rm -f c1                        Get v1, Unmount v1
//	volume rm v1                    Get v1, Get v1, Remove v1
//
// dockerd's Gets around container and remove operations only re-read its cache from the plugin; berthd
// makes the same Mount/Unmount/Remove calls, and asks Get where the answer is shown (inspect, create).
func TestVolumePluginTranscript(t *testing.T) {
	d := daemon.New(t)
	vp := startVolplugin(t, d.PluginSocketDir)
	d.Start(t)
	d.LoadBusybox(t)

	assert.Check(t, is.DeepEqual(vp.step(t, d, "volume", "create", "-d", "volplugin", "v1"),
		[]string{"Plugin.Activate", "VolumeDriver.Capabilities", "VolumeDriver.Get v1", "VolumeDriver.Create v1"}))
	assert.Check(t, is.DeepEqual(vp.step(t, d, "volume", "inspect", "v1"), []string{"VolumeDriver.Get v1"}))
	assert.Check(t, is.DeepEqual(vp.step(t, d, "volume", "ls"), []string{"VolumeDriver.List"}))
	assert.Check(t, is.DeepEqual(withoutGets(vp.step(t, d, "run", "--rm", "-v", "v1:/data", "busybox", "true")),
		[]string{"VolumeDriver.Mount v1", "VolumeDriver.Unmount v1"}))
	assert.Check(t, is.DeepEqual(withoutGets(vp.step(t, d, "run", "-d", "--name", "c1", "-v", "v1:/data", "busybox", "sleep", "100")),
		[]string{"VolumeDriver.Mount v1"}))
	assert.Check(t, is.DeepEqual(withoutGets(vp.step(t, d, "stop", "-t", "0", "c1")), []string{"VolumeDriver.Unmount v1"}))
	assert.Check(t, is.DeepEqual(withoutGets(vp.step(t, d, "start", "c1")), []string{"VolumeDriver.Mount v1"}))
	assert.Check(t, is.DeepEqual(withoutGets(vp.step(t, d, "rm", "-f", "c1")), []string{"VolumeDriver.Unmount v1"}))
	assert.Check(t, is.DeepEqual(withoutGets(vp.step(t, d, "volume", "rm", "v1")), []string{"VolumeDriver.Remove v1"}))
}

// TestVolumeInspectAsksThePlugin: inspect shows the plugin's Status and CreatedAt, and a volume of a dead
// plugin fails to inspect, naming the driver and the connection error (as dockerd, without its retries).
func TestVolumeInspectAsksThePlugin(t *testing.T) {
	d := daemon.New(t)
	vp := startVolplugin(t, d.PluginSocketDir)
	d.Start(t)
	res := d.Docker(t, "volume", "create", "-d", "volplugin", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())

	c := d.Client(t)
	v, err := c.VolumeInspect(context.Background(), "v1")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(v.Status, map[string]any{"driver": "volplugin"}))
	assert.Check(t, v.CreatedAt != "" && v.CreatedAt != "0001-01-01T00:00:00Z", "CreatedAt from the plugin: %q", v.CreatedAt)

	vp.kill(syscall.SIGKILL)
	_, err = c.VolumeInspect(context.Background(), "v1")
	assert.Assert(t, err != nil, "a dead plugin's volume inspected as healthy")
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Check(t, is.Contains(err.Error(), `get v1: error while checking if volume "v1" exists in driver "volplugin"`))
	assert.Check(t, is.Contains(err.Error(), "connection refused"))
	res = d.Docker(t, "volume", "inspect", "v1")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, `exists in driver "volplugin"`), res.Combined())
}
