package container

import (
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLiveRestoreAcrossSIGKILL(t *testing.T) {
	d := newDaemon(t, "--live-restore")
	mustDocker(t, d, "run", "-d", "--name", "lr", "-v", "lrvol:/d", "busybox", "sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done")
	pid := mustDocker(t, d, "inspect", "-f", "{{.State.Pid}}", "lr")
	mustDocker(t, d, "run", "-d", "--name", "gone", "busybox", "sh", "-c", "sleep 0.5; echo bye; exit 3")
	d.Kill(t)
	time.Sleep(1500 * time.Millisecond)
	d.Start(t, "--live-restore")
	// Exited while berthd was down: the exit code is collected at restore.
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "gone"), "exited 3")
	out := mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "lr")
	assert.Equal(t, out, "running "+pid)
	// The volume is referenced again: removing it is refused.
	res := d.Docker(t, "volume", "rm", "lrvol")
	assert.Assert(t, is.Contains(res.Stderr, "volume is in use"))
	// Output written while berthd was down and after is in the log.
	before := len(strings.Fields(mustDocker(t, d, "logs", "lr")))
	waitFor(t, 5*time.Second, "new log lines", func() bool { return len(strings.Fields(d.Docker(t, "logs", "lr").Stdout)) > before+2 })
	assert.Equal(t, mustDocker(t, d, "exec", "lr", "echo", "ok"), "ok")
	mustDocker(t, d, "kill", "lr")
	assert.Equal(t, mustDocker(t, d, "wait", "lr"), "137")
}

func TestRestartPolicies(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "onf", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	waitFor(t, 10*time.Second, "on-failure retries", func() bool {
		return d.Docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "onf").Stdout == "2 exited\n"
	})
	mustDocker(t, d, "run", "-d", "--name", "alw", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 0")
	waitFor(t, 10*time.Second, "always restarts", func() bool {
		return strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.RestartCount}}", "alw").Stdout) >= "2"
	})
	// Stopped by the user: stays stopped, also across a daemon restart.
	mustDocker(t, d, "stop", "alw")
	mustDocker(t, d, "run", "-d", "--name", "us", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	mustDocker(t, d, "run", "-d", "--name", "us2", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	mustDocker(t, d, "stop", "-t", "1", "us2")
	d.Restart(t)
	waitFor(t, 10*time.Second, "unless-stopped back", func() bool {
		return d.Docker(t, "inspect", "-f", "{{.State.Status}}", "us").Stdout == "running\n"
	})
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}}", "us2"), "exited")
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}}", "alw"), "exited")
	mustDocker(t, d, "rm", "-f", "us", "us2", "alw", "onf")
}

func TestShutdownStopsContainers(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "sd", "busybox", "sleep", "1000")
	d.Restart(t)
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}}", "sd"), "exited")
	mustDocker(t, d, "start", "sd")
	mustDocker(t, d, "rm", "-f", "sd")
}

func TestLiveRestoreAcrossGracefulRestart(t *testing.T) {
	d := newDaemon(t, "--live-restore")
	mustDocker(t, d, "run", "-d", "--name", "lg", "busybox", "sh", "-c", "sleep 2; echo after; exit 7")
	pid := mustDocker(t, d, "inspect", "-f", "{{.State.Pid}}", "lg")
	d.Restart(t, "--live-restore")
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "lg"), "running "+pid)
	// The exit that happens after the restart is collected, with its output.
	assert.Equal(t, mustDocker(t, d, "wait", "lg"), "7")
	assert.Equal(t, mustDocker(t, d, "logs", "lg"), "after")
}
