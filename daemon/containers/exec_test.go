package containers

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	ctdtest "github.com/berthd/berthd/libcontainerd/types/testutil"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func (h *harness) execInspect(id string) *ctypes.ExecInspect {
	h.t.Helper()
	r, err := h.b.ExecInspect(h.ctx, id)
	assert.NilError(h.t, err)
	return r
}

// waitExec waits until exec id is done and returns its inspect.
func (h *harness) waitExec(id string) *ctypes.ExecInspect {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.rt.WaitEvents()
		r := h.execInspect(id)
		if !r.Running && r.ExitCode != nil {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("exec %s never ended", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitProcess waits until the runtime runs exec id of container cid.
func (h *harness) waitProcess(cid, id string) ctdtest.ProcessInfo {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := h.rt.Process(cid, id)
		if err == nil && p.Status == ltypes.StatusRunning {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("exec %s never ran: %v", id, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer written by the service's copy goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestExecLifecycle(t *testing.T) {
	h := newHarness(t, false)
	ctx, b := h.ctx, h.b
	cid := h.create("c1", nil)

	_, err := b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.Check(t, errdefs.IsConflict(err), "exec in a container that does not run: %v", err)
	assert.Error(t, err, "Container "+cid+" is not running")
	_, err = b.ExecCreate(ctx, "nope", ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	assert.NilError(t, b.ContainerStart(ctx, cid))
	_, err = b.ExecCreate(ctx, cid, ctypes.ExecOptions{})
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Error(t, err, "No exec command specified")

	// Detached: ExecStart returns at once, the exit code comes with the exit.
	id, err := b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"sleep", "1"}, Env: []string{"A=b"}, WorkingDir: "/tmp"})
	assert.NilError(t, err)
	r := h.execInspect(id)
	assert.Check(t, !r.Running)
	assert.Check(t, r.ExitCode == nil, "no exit code before the start")
	assert.Equal(t, r.ContainerID, cid)
	assert.Check(t, is.DeepEqual(r.ProcessConfig.Arguments, []string{"1"}))
	assert.NilError(t, b.ExecStart(ctx, id, nil, nil, nil, nil))
	p := h.waitProcess(cid, id)
	assert.Check(t, is.DeepEqual(p.Spec.Args, []string{"sleep", "1"}))
	assert.Equal(t, p.Spec.Cwd, "/tmp")
	assert.Check(t, is.Contains(p.Spec.Env, "A=b"))
	assert.Check(t, is.Contains(strings.Join(p.Spec.Env, " "), "PATH="), "the container's environment")
	r = h.execInspect(id)
	assert.Check(t, r.Running)
	assert.Equal(t, r.Pid, int(p.Pid))
	assert.NilError(t, h.rt.ExitProcess(cid, id, 5))
	r = h.waitExec(id)
	assert.Equal(t, *r.ExitCode, 5)

	err = b.ExecStart(ctx, id, nil, nil, nil, nil)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, "Error: Exec command "+id+" has already run")

	// Attached: ExecStart copies the output and returns at the exit.
	id, err = b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"echo"}, AttachStdout: true, AttachStderr: true})
	assert.NilError(t, err)
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- b.ExecStart(ctx, id, nil, &stdout, &stderr, nil) }()
	h.waitProcess(cid, id)
	_, err = h.rt.Stdout(cid, id).Write([]byte("out\n"))
	assert.NilError(t, err)
	_, err = h.rt.Stderr(cid, id).Write([]byte("err\n"))
	assert.NilError(t, err)
	assert.NilError(t, h.rt.ExitProcess(cid, id, 0))
	assert.NilError(t, <-done)
	assert.Equal(t, stdout.String(), "out\n")
	assert.Equal(t, stderr.String(), "err\n")
	assert.Equal(t, *h.waitExec(id).ExitCode, 0)

	_, err = b.ExecInspect(ctx, "nope")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Error(t, err, "No such exec instance: nope")
}

// TestExecRefusals: the runtime's refusal of the command is an InvalidArgument with exit code 126; a
// paused container takes no exec; an exec still running when the container stops is killed.
func TestExecRefusals(t *testing.T) {
	h := newHarness(t, false)
	ctx, b := h.ctx, h.b
	cid := h.run("c1", nil)

	h.rt.FailOnce(ctdtest.OpProcessStart, &ltypes.ProcessStartError{Reason: ltypes.CommandNotFound,
		Msg: `OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`})
	id, err := b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"nope"}})
	assert.NilError(t, err)
	err = b.ExecStart(ctx, id, nil, nil, nil, nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.ErrorContains(t, err, "executable file not found")
	r := h.execInspect(id)
	assert.Check(t, !r.Running)
	assert.Equal(t, *r.ExitCode, 126)
	_, err = h.rt.Process(cid, id)
	assert.Check(t, errdefs.IsNotFound(err), "the refused process is deleted: %v", err)

	// Any other failure keeps its class, and the exit code is still 126.
	h.rt.FailOnce(ctdtest.OpExec, errUnavailable)
	id, err = b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.NilError(t, err)
	err = b.ExecStart(ctx, id, nil, nil, nil, nil)
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Equal(t, *h.execInspect(id).ExitCode, 126)

	assert.NilError(t, b.ContainerPause(ctx, cid))
	_, err = b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, "Container "+cid+" is paused, unpause the container before exec")
	assert.NilError(t, b.ContainerUnpause(ctx, cid))

	// Created before the container stopped, started after: refused.
	late, err := b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.NilError(t, err)
	id, err = b.ExecCreate(ctx, cid, ctypes.ExecOptions{Cmd: []string{"sleep", "60"}})
	assert.NilError(t, err)
	assert.NilError(t, b.ExecStart(ctx, id, nil, nil, nil, nil))
	h.waitProcess(cid, id)
	h.exit(cid, 0)
	h.waitStatus(cid, "exited")
	assert.Equal(t, *h.waitExec(id).ExitCode, 137, "killed with the container")
	err = b.ExecStart(ctx, late, nil, nil, nil, nil)
	assert.Check(t, errdefs.IsConflict(err), "%v", err)
	assert.Error(t, err, "Container "+cid+" is not running")
}
