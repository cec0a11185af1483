package containers

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	ctypes "github.com/berthd/berthd/api/types/container"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	ctdtest "github.com/berthd/berthd/libcontainerd/types/testutil"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestRestoreLiveRestore: with live-restore, a restarted daemon takes running (and paused) tasks over,
// marks the ones that died while it was down exited with their exit code, and handles later exits.
func TestRestoreLiveRestore(t *testing.T) {
	h := newHarness(t, true)
	a := h.run("ca", &ctypes.HostConfig{Binds: []string{"va:/data"}, RestartPolicy: ctypes.RestartPolicy{Name: ctypes.RestartPolicyAlways}})
	b := h.run("cb", nil)
	p := h.run("cp", nil)
	assert.NilError(t, h.b.ContainerPause(h.ctx, p))
	created := h.create("created", nil)
	stopped := h.run("stopped", nil)
	assert.NilError(t, h.b.ContainerStop(h.ctx, stopped, nil, ""))
	pidA := h.inspect(a).State.Pid
	_, err := h.rt.Stdout(p, "").Write([]byte("before\n"))
	assert.NilError(t, err)
	// A directory that is no container record is skipped.
	assert.NilError(t, os.Mkdir(filepath.Join(h.cfg.Root, "bogus"), 0o700))

	h.crash(true, func() {
		assert.NilError(t, h.rt.Exit(b, 7))
		_, err := h.rt.Stdout(p, "").Write([]byte("during\n"))
		assert.NilError(t, err)
	})

	r := h.inspect(a)
	assert.Equal(t, r.State.Status, "running", "live-restored")
	assert.Equal(t, r.State.Pid, pidA)
	assert.Check(t, h.rt.HasTask(a))
	assert.Equal(t, h.vols.restoredMounts("va"), 1, "the volume mount is taken over")
	r = h.inspect(b)
	assert.Equal(t, r.State.Status, "exited", "died while the daemon was down")
	assert.Equal(t, r.State.ExitCode, 7)
	assert.Check(t, !h.rt.HasContainer(b), "its containerd container is deleted")
	assert.Check(t, is.DeepEqual(h.events.actions(b), []string{"die"}))
	assert.Equal(t, h.inspect(p).State.Status, "paused")
	assert.Equal(t, h.inspect(created).State.Status, "created")
	assert.Equal(t, h.inspect(stopped).State.Status, "exited")
	total, running, paused, stopped_ := h.b.Counts()
	assert.Check(t, is.DeepEqual([]int{total, running, paused, stopped_}, []int{5, 1, 1, 3}))

	// The new daemon drives the restored containers: unpause, exec, exit, restart policy.
	assert.NilError(t, h.b.ContainerUnpause(h.ctx, p))
	id, err := h.b.ExecCreate(h.ctx, a, ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.NilError(t, err)
	assert.NilError(t, h.b.ExecStart(h.ctx, id, nil, nil, nil, nil))
	h.waitProcess(a, id)
	assert.NilError(t, h.rt.ExitProcess(a, id, 0))
	assert.Equal(t, *h.waitExec(id).ExitCode, 0)
	h.exit(a, 1)
	h.restarted(a, 1)
	_, err = h.rt.Stderr(p, "").Write([]byte("after\n"))
	assert.NilError(t, err)
	assert.NilError(t, h.b.ContainerStop(h.ctx, p, nil, ""))
	assert.Equal(t, h.inspect(p).State.ExitCode, 143)
	assert.Equal(t, h.logs(p), "before\nduring\nafter\n", "the output reaches the log across the restart")
}

// logs returns the container's whole log, both streams.
func (h *harness) logs(id string) string {
	h.t.Helper()
	_, write, err := h.b.ContainerLogs(h.ctx, id, ctypes.LogsOptions{ShowStdout: true, ShowStderr: true})
	assert.NilError(h.t, err)
	var out syncBuffer
	assert.NilError(h.t, write(&out, &out))
	return out.String()
}

// TestRestoreWithoutLiveRestore: without live-restore, tasks left running by a daemon that died are
// killed and marked exited, then restart policies and --rm apply as at boot; containerd containers
// without a record are removed.
func TestRestoreWithoutLiveRestore(t *testing.T) {
	h := newHarness(t, false)
	policy := func(name string) *ctypes.HostConfig {
		return &ctypes.HostConfig{RestartPolicy: ctypes.RestartPolicy{Name: name}}
	}
	always := h.run("always", policy(ctypes.RestartPolicyAlways))
	onFailure := h.run("onfailure", policy(ctypes.RestartPolicyOnFailure))
	unlessStopped := h.run("unlessstopped", policy(ctypes.RestartPolicyUnlessStopped))
	none := h.run("none", nil)
	userStopped := h.run("userstopped", policy(ctypes.RestartPolicyAlways))
	assert.NilError(t, h.b.ContainerStop(h.ctx, userStopped, nil, ""))
	exitedAlways := h.run("exitedalways", policy(ctypes.RestartPolicyAlways))
	h.rt.Fail(ctdtest.OpTaskStart, errUnavailable) // its policy restart fails: it stays exited
	h.exit(exitedAlways, 1)
	h.waitFor(exitedAlways, "failed to restart", func(r *ctypes.InspectResponse) bool { return r.State.Error != "" })
	h.rt.Fail(ctdtest.OpTaskStart, nil)
	rm := h.run("rm", &ctypes.HostConfig{AutoRemove: true})

	// A containerd container nobody has a record of (a crash between its creation and the record's).
	orphan, err := h.client.NewContainer(h.ctx, "orphan", ltypes.ContainerConfig{Spec: &specs.Spec{}})
	assert.NilError(t, err)
	task, err := orphan.NewTask(h.ctx, ltypes.TaskConfig{})
	assert.NilError(t, err)
	assert.NilError(t, task.Start(h.ctx))

	h.crash(false, nil)

	r := h.waitStatus(none, "exited")
	assert.Equal(t, r.State.ExitCode, 137, "killed at the restore")
	assert.Check(t, !h.rt.HasContainer(none))
	for _, id := range []string{always, onFailure, unlessStopped, exitedAlways} {
		h.waitFor(id, "restarted at boot", func(r *ctypes.InspectResponse) bool { return r.State.Running })
		assert.Check(t, h.rt.HasTask(id))
	}
	assert.Equal(t, h.inspect(userStopped).State.Status, "exited", "stopped by the user: not restarted")
	h.waitRemoved(rm)
	assert.Check(t, !h.rt.HasContainer("orphan"), "orphan removed")

	// A clean shutdown is no stop by the user: the next daemon restarts the container.
	assert.NilError(t, h.svc.Shutdown(context.Background()))
	h.rt.WaitEvents()
	assert.Equal(t, h.waitStatus(always, "exited").State.ExitCode, 143)
	h.crash(false, nil)
	h.waitFor(always, "restarted at boot", func(r *ctypes.InspectResponse) bool { return r.State.Running })
	assert.Equal(t, h.inspect(none).State.Status, "exited")
	assert.Equal(t, h.inspect(userStopped).State.Status, "exited")
}

// TestRestoreContainerdDown: a daemon that cannot list containerd's containers fails its restore with
// Unavailable rather than marking every container dead.
func TestRestoreContainerdDown(t *testing.T) {
	h := newHarness(t, true)
	id := h.run("ca", nil)
	h.client.Close()
	h.rt.SetDown(true)
	svc, err := New(h.cfg, fakeImages{}, h.layers, h.vols, nil)
	assert.NilError(t, err)
	svc.SetClient(h.rt.Connect(svc.ProcessEvent))
	err = svc.Restore(h.ctx)
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	h.rt.SetDown(false)
	assert.Check(t, h.rt.HasTask(id), "the task is left alone")
}
