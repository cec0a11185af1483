// Package admin holds end-to-end tests of the administrator's options: dockerd's flags and daemon.json
// keys acted on or refused, log drivers and rotation, registry mirrors, metrics, and the systemd units.
// Each test starts a real berthd with its own containerd and drives it with the docker CLI.
package admin

import (
	"os"
	"os/exec"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
)

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
