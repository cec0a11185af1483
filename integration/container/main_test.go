// Package container holds end-to-end tests of containers: berthd with its own containerd, driven by the
// real docker CLI and the moby Go client, with a busybox image built offline by hack/mkimage.
package container

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
)

// newDaemon starts a berthd with the busybox image loaded.
func newDaemon(t *testing.T, extra ...string) *daemon.Daemon {
	t.Helper()
	return daemon.NewWithBusybox(t, extra...)
}

func loadBusybox(t *testing.T, d *daemon.Daemon) {
	t.Helper()
	d.LoadBusybox(t)
}

func mustDocker(t *testing.T, d *daemon.Daemon, args ...string) string {
	t.Helper()
	return d.MustDocker(t, args...)
}

var waitFor = daemon.WaitFor

type volplugin struct {
	cmd  *exec.Cmd
	log  string
	sock string
}

// startVolplugin runs hack/plugins/volplugin as a legacy plugin in the daemon's plugin socket dir.
func startVolplugin(t *testing.T, d *daemon.Daemon) *volplugin {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "volplugin")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/berthd/berthd/hack/plugins/volplugin").CombinedOutput()
	assert.NilError(t, err, string(out))
	dir := t.TempDir()
	vp := &volplugin{sock: filepath.Join(d.PluginSocketDir, "volplugin.sock"), log: filepath.Join(dir, "calls.log")}
	vp.cmd = exec.Command(bin, "-socket", vp.sock, "-root", filepath.Join(dir, "root"), "-log", vp.log)
	vp.cmd.Stderr = os.Stderr
	assert.NilError(t, vp.cmd.Start())
	t.Cleanup(func() {
		_ = vp.cmd.Process.Kill()
		_ = vp.cmd.Wait()
	})
	waitFor(t, 10*time.Second, "volplugin socket", func() bool {
		_, err := os.Stat(vp.sock)
		return err == nil
	})
	return vp
}

// calls counts the plugin calls of method for volume name.
func (vp *volplugin) calls(method, name string) int {
	b, _ := os.ReadFile(vp.log)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "VolumeDriver."+method+" "+name {
			n++
		}
	}
	return n
}
