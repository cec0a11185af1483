package containers

import (
	"fmt"
	"syscall"
	"testing"

	ctypes "github.com/berthd/berthd/api/types/container"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	ctdtest "github.com/berthd/berthd/libcontainerd/types/testutil"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func intp(i int) *int { return &i }

// TestStateMachine walks one container through create, start, pause, exit, restart, stop, kill and
// remove, with dockerd's refusals of the transitions that make no sense.
func TestStateMachine(t *testing.T) {
	h := newHarness(t, false)
	ctx, b := h.ctx, h.b
	id := h.create("c1", nil)
	r := h.inspect(id)
	assert.Equal(t, r.State.Status, "created")
	assert.Equal(t, r.Name, "/c1")
	assert.Check(t, h.layers.has(id), "the RW layer is prepared at create")
	assert.Check(t, !h.rt.HasContainer(id), "nothing in containerd before start")

	assert.NilError(t, b.ContainerStart(ctx, id))
	r = h.inspect(id)
	assert.Equal(t, r.State.Status, "running")
	p, err := h.rt.Process(id, "")
	assert.NilError(t, err)
	assert.Equal(t, p.Status, ltypes.StatusRunning)
	assert.Equal(t, r.State.Pid, int(p.Pid))
	cc, err := h.rt.ContainerConfig(id)
	assert.NilError(t, err)
	assert.Equal(t, cc.SnapshotKey, id, "the task runs on the container's RW layer")
	assert.Equal(t, cc.Spec.Process.Args[0], "sh", "the image's command")

	err = b.ContainerStart(ctx, id)
	assert.Check(t, errdefs.IsNotModified(err), "start a running container: %v", err)

	// Paused: neither started, paused again, exec'd nor removed.
	assert.NilError(t, b.ContainerPause(ctx, id))
	assert.Equal(t, h.inspect(id).State.Status, "paused")
	p, _ = h.rt.Process(id, "")
	assert.Equal(t, p.Status, ltypes.StatusPaused)
	err = b.ContainerStart(ctx, id)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.ErrorContains(t, err, "cannot start a paused container, try unpause instead")
	err = b.ContainerPause(ctx, id)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.ErrorContains(t, err, "Container "+id+" is already paused")
	err = b.ContainerRemove(ctx, id, false, false)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, `cannot remove container "/c1": container is paused: stop the container before removing or force remove`)
	assert.NilError(t, b.ContainerUnpause(ctx, id))
	err = b.ContainerUnpause(ctx, id)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.ErrorContains(t, err, "Container "+id+" is not paused")
	assert.Equal(t, h.inspect(id).State.Status, "running")

	// The process exits by itself: the task and containerd's record go, the exit code stays.
	h.exit(id, 3)
	r = h.waitStatus(id, "exited")
	assert.Equal(t, r.State.ExitCode, 3)
	assert.Check(t, !r.State.Running)
	assert.Check(t, !h.rt.HasContainer(id), "containerd's container is deleted after the exit")

	// Stopped: not paused, killed, stopped again or resized.
	err = b.ContainerPause(ctx, id)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, "Container "+id+" is not running")
	err = b.ContainerKill(ctx, id, "")
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, "Container "+id+" is not running")
	err = b.ContainerStop(ctx, id, nil, "")
	assert.Check(t, errdefs.IsNotModified(err), "%v", err)
	err = b.ContainerResize(ctx, id, 24, 80)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)

	// Started again, restarted: a new task each time.
	assert.NilError(t, b.ContainerStart(ctx, id))
	assert.Equal(t, h.inspect(id).State.Status, "running")
	assert.NilError(t, b.ContainerRestart(ctx, id, nil, ""))
	r = h.inspect(id)
	assert.Equal(t, r.State.Status, "running")
	assert.Equal(t, r.RestartCount, 0, "a restart by the user is not counted")

	// Stop: the stop signal, and SIGKILL when it is ignored (-t 0: at once).
	assert.NilError(t, b.ContainerStop(ctx, id, nil, ""))
	r = h.inspect(id)
	assert.Equal(t, r.State.Status, "exited", "stop returns once the container exited")
	assert.Equal(t, r.State.ExitCode, 128+int(syscall.SIGTERM))
	assert.NilError(t, b.ContainerStart(ctx, id))
	assert.NilError(t, h.rt.IgnoreSignal(id, "", syscall.SIGTERM))
	assert.NilError(t, b.ContainerStop(ctx, id, intp(0), ""))
	assert.Equal(t, h.inspect(id).State.ExitCode, 137)

	// Kill: a signal the process survives leaves it running; SIGKILL returns once it exited.
	assert.NilError(t, b.ContainerStart(ctx, id))
	assert.NilError(t, b.ContainerKill(ctx, id, "WINCH"))
	assert.Equal(t, h.inspect(id).State.Status, "running")
	err = b.ContainerKill(ctx, id, "NOPE")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Error(t, err, "Invalid signal: NOPE")
	assert.NilError(t, b.ContainerKill(ctx, id, ""))
	r = h.inspect(id)
	assert.Equal(t, r.State.Status, "exited")
	assert.Equal(t, r.State.ExitCode, 137)

	// Remove: refused while running without force; force kills and removes everything.
	assert.NilError(t, b.ContainerStart(ctx, id))
	err = b.ContainerRemove(ctx, id, false, false)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, `cannot remove container "/c1": container is running: stop the container before removing or force remove`)
	assert.NilError(t, b.ContainerRemove(ctx, id, true, false))
	_, err = b.ContainerInspect(ctx, id, false)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Error(t, err, "No such container: "+id)
	assert.Check(t, !h.layers.has(id), "the RW layer is removed")
	assert.Check(t, !h.rt.HasContainer(id))
	err = b.ContainerRemove(ctx, id, true, false)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	h.rt.WaitEvents()
	assert.Check(t, is.DeepEqual(h.events.actions(id), []string{
		"create", "start", "pause", "unpause", "die",
		"start", "kill", "die", "stop", "start", "restart",
		"kill", "die", "stop", "start", "kill", "kill", "die", "stop",
		"start", "kill", "kill", "die",
		"start", "kill", "die", "destroy",
	}))
}

// TestRemoveStopped removes a container that never ran and one that exited, with its anonymous
// volumes on request, and frees the name.
func TestRemoveStopped(t *testing.T) {
	h := newHarness(t, false)
	id := h.create("c1", &ctypes.HostConfig{Binds: []string{"named:/data"}})
	r, err := h.b.ContainerCreate(h.ctx, "c1", &ctypes.CreateRequest{Config: ctypes.Config{Image: "busybox"}})
	assert.Check(t, errdefs.IsConflict(err), "the name is taken: %v %v", r, err)
	refs, _ := h.vols.state("named")
	assert.Equal(t, refs, 1)
	assert.NilError(t, h.b.ContainerRemove(h.ctx, id, false, true))
	refs, _ = h.vols.state("named")
	assert.Equal(t, refs, 0, "the volume reference is released")
	h.create("c1", nil)

	// A volume mounted for the run is unmounted at the exit.
	id = h.run("c2", &ctypes.HostConfig{Binds: []string{"named:/data"}})
	_, mounts := h.vols.state("named")
	assert.Equal(t, mounts, 1)
	h.exit(id, 0)
	h.waitStatus(id, "exited")
	_, mounts = h.vols.state("named")
	assert.Equal(t, mounts, 0)
	assert.NilError(t, h.b.ContainerRemove(h.ctx, id, false, false))
}

// TestStartFailures: a start the runtime refuses leaves the container exited with dockerd's exit code
// and the error class the failure was born with, and nothing behind in containerd.
func TestStartFailures(t *testing.T) {
	h := newHarness(t, false)
	for _, tc := range []struct {
		err   error
		code  int
		class func(error) bool
		msg   string
	}{
		{&ltypes.ProcessStartError{Reason: ltypes.CommandNotFound, Msg: `exec: "nope": executable file not found in $PATH`}, 127, errdefs.IsInvalidArgument, "executable file not found"},
		{&ltypes.ProcessStartError{Reason: ltypes.CommandNotInvokable, Msg: `exec: "/etc": permission denied`}, 126, errdefs.IsInvalidArgument, "permission denied"},
		{&ltypes.ProcessStartError{Reason: ltypes.MountTypeMismatch, Msg: "mount: not a directory"}, 127, errdefs.IsInvalidArgument, "Are you trying to mount a directory onto a file (or vice-versa)?"},
		{errdefs.ErrUnavailable.WithMessage("containerd is down"), 128, errdefs.IsUnavailable, "containerd is down"},
	} {
		id := h.create("", &ctypes.HostConfig{Binds: []string{"v:/data"}})
		h.rt.FailOnce(ctdtest.OpTaskStart, tc.err)
		err := h.b.ContainerStart(h.ctx, id)
		assert.Check(t, tc.class(err), "%v", err)
		assert.ErrorContains(t, err, tc.msg)
		r := h.inspect(id)
		assert.Equal(t, r.State.Status, "created", "never started, as dockerd shows it: %s", tc.msg)
		assert.Equal(t, r.State.ExitCode, tc.code, tc.msg)
		assert.Check(t, is.Contains(r.State.Error, tc.msg))
		assert.Check(t, !h.rt.HasContainer(id), "nothing left in containerd: %s", tc.msg)
		_, mounts := h.vols.state("v")
		assert.Equal(t, mounts, 0, "volumes unmounted: %s", tc.msg)
		// The next start works and clears the error.
		assert.NilError(t, h.b.ContainerStart(h.ctx, id))
		assert.Equal(t, h.inspect(id).State.Error, "")
		assert.NilError(t, h.b.ContainerRemove(h.ctx, id, true, true))
	}

	// A --rm container whose start failed is removed.
	id := h.create("", &ctypes.HostConfig{AutoRemove: true})
	h.rt.FailOnce(ctdtest.OpNewContainer, errdefs.ErrUnavailable.WithMessage("down"))
	assert.Check(t, errdefs.IsUnavailable(h.b.ContainerStart(h.ctx, id)))
	h.waitRemoved(id)
}

func (h *harness) waitRemoved(id string) {
	h.t.Helper()
	ch, err := h.b.ContainerWait(h.ctx, id, "removed")
	if errdefs.IsNotFound(err) {
		return
	}
	assert.NilError(h.t, err)
	<-ch
	_, err = h.b.ContainerInspect(h.ctx, id, false)
	assert.Check(h.t, errdefs.IsNotFound(err), "%v", err)
}

// TestOOMAndAutoRemove: an OOM kill shows in inspect; a --rm container goes at its exit.
func TestOOMAndAutoRemove(t *testing.T) {
	h := newHarness(t, false)
	id := h.run("", nil)
	assert.NilError(t, h.rt.OOM(id))
	h.exit(id, 137)
	r := h.waitStatus(id, "exited")
	assert.Check(t, r.State.OOMKilled)
	assert.Equal(t, r.State.ExitCode, 137)
	assert.Check(t, is.DeepEqual(h.events.actions(id), []string{"create", "start", "oom", "die"}))

	id = h.run("", &ctypes.HostConfig{AutoRemove: true})
	h.exit(id, 0)
	h.waitRemoved(id)
	// The RW layer goes once containerd's teardown, which runs after the removal, is done.
	h.svc.life.waitTeardowns(h.ctx)
	assert.Check(t, !h.layers.has(id))

	// Restarted by the user, a --rm container is not removed on the way.
	id = h.run("", &ctypes.HostConfig{AutoRemove: true})
	assert.NilError(t, h.b.ContainerRestart(h.ctx, id, nil, ""))
	assert.Equal(t, h.inspect(id).State.Status, "running")
	assert.NilError(t, h.b.ContainerStop(h.ctx, id, nil, ""))
	h.waitRemoved(id)
}

// TestContainerdLostExit: an exit that happened while the event stream was down is found at the resync.
func TestContainerdLostExit(t *testing.T) {
	h := newHarness(t, false)
	id := h.run("", nil)
	gone := h.run("", nil)
	h.rt.SetDown(true)
	assert.NilError(t, h.rt.Exit(id, 5))
	// A task containerd lost altogether (its state went with a containerd restart).
	assert.NilError(t, h.rt.Forget(gone))
	h.rt.SetDown(false)

	h.rt.Resync()
	r := h.waitStatus(id, "exited")
	assert.Equal(t, r.State.ExitCode, 5)
	r = h.waitStatus(gone, "exited")
	assert.Equal(t, r.State.ExitCode, 255, "no exit status to be had")
	assert.Check(t, !h.rt.HasContainer(gone))
}

func TestManyContainersEvents(t *testing.T) {
	h := newHarness(t, false)
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, h.run(fmt.Sprintf("c%d", i), nil))
	}
	for i, id := range ids {
		assert.NilError(t, h.rt.Exit(id, i))
	}
	for i, id := range ids {
		assert.Equal(t, h.waitStatus(id, "exited").State.ExitCode, i)
	}
	total, running, paused, stopped := h.b.Counts()
	assert.Check(t, is.DeepEqual([]int{total, running, paused, stopped}, []int{10, 0, 0, 10}))
}

// TestWaitConditions: docker wait's conditions answer with the exit code of the exit they waited for.
func TestWaitConditions(t *testing.T) {
	h := newHarness(t, false)
	ctx, b := h.ctx, h.b
	id := h.create("c1", nil)
	ch, err := b.ContainerWait(ctx, id, "not-running")
	assert.NilError(t, err)
	assert.Equal(t, (<-ch).StatusCode, int64(0), "a created container is not running")
	next, err := b.ContainerWait(ctx, id, "next-exit")
	assert.NilError(t, err)
	removed, err := b.ContainerWait(ctx, id, "removed")
	assert.NilError(t, err)

	assert.NilError(t, b.ContainerStart(ctx, id))
	notRunning, err := b.ContainerWait(ctx, id, "not-running")
	assert.NilError(t, err)
	h.exit(id, 4)
	assert.Equal(t, (<-next).StatusCode, int64(4))
	assert.Equal(t, (<-notRunning).StatusCode, int64(4))
	assert.NilError(t, b.ContainerRemove(ctx, id, false, false))
	assert.Equal(t, (<-removed).StatusCode, int64(4))

	_, err = b.ContainerWait(ctx, id, "not-running")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
}
