package containers

import (
	"testing"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	ctdtest "github.com/berthd/berthd/libcontainerd/types/testutil"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func withPolicy(name string, max int) *ctypes.HostConfig {
	return &ctypes.HostConfig{RestartPolicy: ctypes.RestartPolicy{Name: name, MaximumRetryCount: max}}
}

// running waits until the container runs its n-th policy restart.
func (h *harness) restarted(id string, n int) *ctypes.InspectResponse {
	h.t.Helper()
	return h.waitFor(id, "restarted", func(r *ctypes.InspectResponse) bool {
		return r.State.Running && !r.State.Restarting && r.RestartCount == n
	})
}

// TestPolicyOnFailure: on-failure:N restarts a failing container N times, not a succeeding one.
func TestPolicyOnFailure(t *testing.T) {
	h := newHarness(t, false)
	id := h.run("", withPolicy(ctypes.RestartPolicyOnFailure, 2))
	h.exit(id, 1)
	h.restarted(id, 1)
	h.exit(id, 2)
	h.restarted(id, 2)
	h.exit(id, 3)
	r := h.waitStatus(id, "exited")
	assert.Equal(t, r.State.ExitCode, 3)
	assert.Equal(t, r.RestartCount, 2, "the retries are used up")

	// A start by the user resets the count.
	assert.NilError(t, h.b.ContainerStart(h.ctx, id))
	assert.Equal(t, h.inspect(id).RestartCount, 0)
	h.exit(id, 0)
	r = h.waitStatus(id, "exited")
	assert.Equal(t, r.RestartCount, 0, "a success is not retried")

	// Without a maximum, every failure is retried.
	id = h.run("", withPolicy(ctypes.RestartPolicyOnFailure, 0))
	for i := 1; i <= 3; i++ {
		h.exit(id, 1)
		h.restarted(id, i)
	}
	assert.NilError(t, h.b.ContainerStop(h.ctx, id, nil, ""))
	assert.Equal(t, h.inspect(id).State.Status, "exited")
}

// TestPolicyAlwaysAndStops: always and unless-stopped restart any exit, but not one the user asked for
// (stop, or kill with the stop signal); no has no restarts.
func TestPolicyAlwaysAndStops(t *testing.T) {
	h := newHarness(t, false)
	for _, p := range []string{ctypes.RestartPolicyAlways, ctypes.RestartPolicyUnlessStopped} {
		id := h.run("", withPolicy(p, 0))
		h.exit(id, 0)
		h.restarted(id, 1)
		h.exit(id, 137)
		h.restarted(id, 2)

		assert.NilError(t, h.b.ContainerStop(h.ctx, id, nil, ""))
		r := h.inspect(id)
		assert.Equal(t, r.State.Status, "exited", "%s: stopped by the user", p)
		assert.Check(t, !r.State.Restarting)

		// docker kill with the stop signal is a stop; with another signal it is a failure.
		assert.NilError(t, h.b.ContainerStart(h.ctx, id))
		assert.NilError(t, h.b.ContainerKill(h.ctx, id, "KILL"))
		h.restarted(id, 1)
		assert.NilError(t, h.b.ContainerKill(h.ctx, id, "TERM"))
		h.rt.WaitEvents()
		r = h.waitStatus(id, "exited")
		assert.Check(t, !r.State.Restarting, "%s: killed with the stop signal", p)
		assert.Equal(t, r.State.ExitCode, 143)
	}

	id := h.run("", withPolicy(ctypes.RestartPolicyDisabled, 0))
	h.exit(id, 1)
	r := h.waitStatus(id, "exited")
	assert.Equal(t, r.RestartCount, 0)
	assert.Check(t, !r.State.Restarting)
}

// TestPolicyShutdown: a daemon shutdown stops the containers without restarting them, and is not a
// stop by the user: the next daemon restarts them (see TestRestore).
func TestPolicyShutdown(t *testing.T) {
	h := newHarness(t, false)
	id := h.run("", withPolicy(ctypes.RestartPolicyAlways, 0))
	assert.NilError(t, h.svc.Shutdown(h.ctx))
	h.rt.WaitEvents()
	r := h.waitStatus(id, "exited")
	assert.Check(t, !r.State.Restarting)
	assert.Equal(t, r.State.ExitCode, 143)
	assert.Check(t, is.Contains(h.events.actions(id), "die"))
	assert.Check(t, !h.rt.HasContainer(id))
}

// TestPolicyFailedRestart: a policy restart the runtime refuses leaves the container exited, not
// restarting forever.
func TestPolicyFailedRestart(t *testing.T) {
	h := newHarness(t, false)
	id := h.run("", withPolicy(ctypes.RestartPolicyAlways, 0))
	h.rt.Fail(ctdtest.OpTaskStart, errUnavailable)
	h.exit(id, 1)
	r := h.waitFor(id, "failed to restart", func(r *ctypes.InspectResponse) bool {
		return !r.State.Running && !r.State.Restarting && r.State.Error != ""
	})
	assert.Check(t, is.Contains(r.State.Error, "containerd is down"))
	h.rt.Fail(ctdtest.OpTaskStart, nil)
	assert.NilError(t, h.b.ContainerStart(h.ctx, id))
	assert.Equal(t, h.inspect(id).State.Error, "")
}

// TestPolicyRestarting: a container waiting for its policy restart is "restarting": a stop ends the
// wait for good, rm needs force, exec is refused.
func TestPolicyRestarting(t *testing.T) {
	h := newHarness(t, false)
	h.cfg.firstRestartDelay = time.Hour
	h.crash(false, nil)
	ctx, b := h.ctx, h.b

	id := h.run("c1", withPolicy(ctypes.RestartPolicyAlways, 0))
	h.exit(id, 1)
	r := h.waitStatus(id, "restarting")
	assert.Check(t, r.State.Restarting)
	assert.Equal(t, r.State.ExitCode, 1)
	_, err := b.ExecCreate(ctx, id, ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	err = b.ContainerRemove(ctx, id, false, false)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, `cannot remove container "/c1": container is restarting: stop the container before removing or force remove`)

	assert.NilError(t, b.ContainerStop(ctx, id, nil, ""))
	r = h.inspect(id)
	assert.Equal(t, r.State.Status, "exited")
	assert.Equal(t, r.State.ExitCode, 1, "the last exit's code")
	assert.Check(t, !h.rt.HasContainer(id))

	// rm -f of a restarting container cancels the restart.
	id = h.run("c2", withPolicy(ctypes.RestartPolicyAlways, 0))
	h.exit(id, 1)
	h.waitStatus(id, "restarting")
	assert.NilError(t, b.ContainerRemove(ctx, id, true, false))
	_, err = b.ContainerInspect(ctx, id, false)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
}

// TestPolicyBackoff: each policy restart waits twice as long as the one before; a start by the user
// starts the back-off over.
func TestPolicyBackoff(t *testing.T) {
	h := newHarness(t, false)
	h.cfg.firstRestartDelay = time.Millisecond
	h.crash(false, nil)
	id := h.run("", withPolicy(ctypes.RestartPolicyAlways, 0))
	c := h.svc.store.byExactID(id)
	delay := func() time.Duration {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.restartDelay
	}
	for i := 1; i <= 4; i++ {
		h.exit(id, 1)
		h.restarted(id, i)
	}
	assert.Equal(t, delay(), 8*time.Millisecond)
	assert.NilError(t, h.b.ContainerStop(h.ctx, id, nil, ""))
	assert.NilError(t, h.b.ContainerStart(h.ctx, id))
	assert.Equal(t, delay(), time.Duration(0))
	h.exit(id, 1)
	h.restarted(id, 1)
	assert.Equal(t, delay(), time.Millisecond)
}
