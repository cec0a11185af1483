// Package admin holds end-to-end tests of the administrator's options: dockerd's flags and daemon.json
// keys acted on or refused, log drivers and rotation, registry mirrors, metrics, and the systemd units.
// Each test starts a real berthd with its own containerd and drives it with the docker CLI.
package admin

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/mkimage"
	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
)

// newDaemon starts a berthd with extra flags and the busybox image loaded.
func newDaemon(t *testing.T, extra ...string) *daemon.Daemon {
	t.Helper()
	d := daemon.New(t)
	d.Start(t, extra...)
	img, err := mkimage.BusyboxImage("busybox:latest")
	assert.NilError(t, err)
	var b bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&b, []mkimage.Image{img}))
	res := d.DockerStdin(t, b.Bytes(), "load")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	return d
}

func mustDocker(t *testing.T, d *daemon.Daemon, args ...string) string {
	t.Helper()
	res := d.Docker(t, args...)
	assert.Equal(t, res.ExitCode, 0, "docker %v: %s", args, res.Combined())
	return strings.TrimSpace(res.Stdout)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runBerthd runs the berthd binary with args (no daemon started when they include --validate).
func runBerthd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(daemon.Binary(t), args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		assert.NilError(t, err)
	}
	return string(out), code
}

func writeConfig(t *testing.T, d *daemon.Daemon, body string) {
	t.Helper()
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(body), 0o600))
}
