package testutil

import (
	"context"
	"io"
	"sync"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berthd/libcontainerd/types"
)

// recorder collects events as a service's callback would see them.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) cb(_ context.Context, typ types.EventType, info types.EventInfo) {
	r.mu.Lock()
	r.evs = append(r.evs, Event{typ, info})
	r.mu.Unlock()
}

func (r *recorder) types(id string) []types.EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []types.EventType
	for _, e := range r.evs {
		if e.Info.ContainerID == id {
			out = append(out, e.Type)
		}
	}
	return out
}

func spec() *specs.Spec { return &specs.Spec{Process: &specs.Process{Args: []string{"sh"}}} }

func TestLifecycleEventsAndDelete(t *testing.T) {
	ctx := context.Background()
	rt := NewRuntime()
	rec := &recorder{}
	cl := rt.Connect(rec.cb)

	ctr, err := cl.NewContainer(ctx, "c1", types.ContainerConfig{Spec: spec(), Labels: map[string]string{"a": "b"}})
	assert.NilError(t, err)
	_, err = cl.NewContainer(ctx, "c1", types.ContainerConfig{Spec: spec()})
	assert.Check(t, errdefs.IsAlreadyExists(err), "%v", err)
	_, err = cl.NewContainer(ctx, "c2", types.ContainerConfig{})
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	info, err := ctr.Info(ctx)
	assert.NilError(t, err)
	assert.Equal(t, info.Runtime, types.DefaultRuntime)
	assert.Equal(t, info.Labels["a"], "b")

	var out []byte
	done := make(chan struct{})
	task, err := ctr.NewTask(ctx, types.TaskConfig{IOConfig: types.IOConfig{FIFODir: t.TempDir(), Stdio: func(s types.Stdio) error {
		assert.Check(t, s.Stdin == nil)
		assert.Check(t, s.Stderr != nil)
		go func() { out, _ = io.ReadAll(s.Stdout); close(done) }()
		return nil
	}}})
	assert.NilError(t, err)
	_, err = ctr.NewTask(ctx, types.TaskConfig{})
	assert.Check(t, errdefs.IsAlreadyExists(err), "%v", err)
	st, err := task.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Status, types.StatusCreated)
	assert.NilError(t, task.Start(ctx))

	_, err = rt.Stdout("c1", "").Write([]byte("hello"))
	assert.NilError(t, err)
	assert.Check(t, errdefs.IsFailedPrecondition(ctr.Delete(ctx)), "a container with a task is not deleted")
	_, err = task.Delete(ctx)
	assert.Check(t, errdefs.IsFailedPrecondition(err), "a running task is not deleted: %v", err)

	assert.NilError(t, rt.Exit("c1", 3))
	<-done
	assert.Equal(t, string(out), "hello", "stdout reaches EOF at the exit")
	assert.Check(t, errdefs.IsNotFound(task.Kill(ctx, syscall.SIGTERM, false)), "signalling an exited task")
	st, err = task.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Status, types.StatusStopped)
	assert.Equal(t, st.ExitCode, uint32(3))

	es, err := task.Delete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, es.ExitCode, uint32(3))
	_, err = task.Delete(ctx)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	_, err = ctr.Task(ctx, nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.NilError(t, ctr.Delete(ctx))
	_, err = cl.LoadContainer(ctx, "c1")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	rt.WaitEvents()
	assert.Check(t, is.DeepEqual(rec.types("c1"), []types.EventType{types.EventCreate, types.EventStart, types.EventExit, types.EventTaskDeleted}))
	ev := rt.Events()
	assert.Equal(t, ev[2].Info.ExitCode, uint32(3))
	assert.Equal(t, ev[2].Info.ProcessID, "c1")
}

func newRunning(t *testing.T, cl types.Client, id string) types.Task {
	t.Helper()
	ctx := context.Background()
	ctr, err := cl.NewContainer(ctx, id, types.ContainerConfig{Spec: spec()})
	assert.NilError(t, err)
	task, err := ctr.NewTask(ctx, types.TaskConfig{})
	assert.NilError(t, err)
	assert.NilError(t, task.Start(ctx))
	return task
}

func TestSignalsAndPause(t *testing.T) {
	ctx := context.Background()
	rt := NewRuntime()
	rec := &recorder{}
	cl := rt.Connect(rec.cb)
	task := newRunning(t, cl, "c1")

	assert.NilError(t, rt.IgnoreSignal("c1", "", syscall.SIGTERM))
	assert.NilError(t, task.Kill(ctx, syscall.SIGTERM, false))
	assert.NilError(t, task.Kill(ctx, syscall.SIGWINCH, false))
	st, _ := task.Status(ctx)
	assert.Equal(t, st.Status, types.StatusRunning, "ignored signals")

	assert.NilError(t, task.Pause(ctx))
	assert.Check(t, errdefs.IsFailedPrecondition(task.Pause(ctx)))
	st, _ = task.Status(ctx)
	assert.Equal(t, st.Status, types.StatusPaused)
	assert.NilError(t, task.Kill(ctx, syscall.SIGINT, false))
	st, _ = task.Status(ctx)
	assert.Equal(t, st.Status, types.StatusPaused, "a paused task gets its signals when resumed")
	assert.NilError(t, task.Resume(ctx))
	assert.Check(t, errdefs.IsFailedPrecondition(task.Resume(ctx)))
	st, _ = task.Status(ctx)
	assert.Equal(t, st.Status, types.StatusStopped)
	assert.Equal(t, st.ExitCode, uint32(128+syscall.SIGINT))
	assert.Check(t, is.DeepEqual(rt.Signals("c1", ""), []syscall.Signal{syscall.SIGTERM, syscall.SIGWINCH, syscall.SIGINT}))

	task2 := newRunning(t, cl, "c2")
	assert.NilError(t, task2.Pause(ctx))
	es, err := task2.ForceDelete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, es.ExitCode, uint32(137), "SIGKILL reaches a paused task")

	rt.WaitEvents()
	assert.Check(t, is.DeepEqual(rec.types("c1"), []types.EventType{types.EventCreate, types.EventStart,
		types.EventPaused, types.EventResumed, types.EventExit}))
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	rt := NewRuntime()
	rec := &recorder{}
	cl := rt.Connect(rec.cb)
	task := newRunning(t, cl, "c1")

	got := make(chan string, 1)
	p, err := task.Exec(ctx, "e1", &specs.Process{Args: []string{"echo"}}, types.IOConfig{FIFODir: "x", Terminal: true, Stdin: true,
		Stdio: func(s types.Stdio) error {
			assert.Check(t, s.Stderr == nil, "no stderr with a terminal")
			assert.Check(t, s.Stdin != nil)
			go func() { b, _ := io.ReadAll(s.Stdout); got <- string(b) }()
			return nil
		}})
	assert.NilError(t, err)
	_, err = task.Exec(ctx, "e1", &specs.Process{}, types.IOConfig{})
	assert.Check(t, errdefs.IsAlreadyExists(err), "%v", err)
	assert.Equal(t, p.Pid(), uint32(0), "no pid before start")
	assert.NilError(t, p.Start(ctx))
	info, err := rt.Process("c1", "e1")
	assert.NilError(t, err)
	assert.Check(t, info.Spec.Terminal)
	assert.Equal(t, p.Pid(), info.Pid)
	_, err = p.Delete(ctx)
	assert.Check(t, errdefs.IsFailedPrecondition(err), "%v", err)
	_, _ = rt.Stdout("c1", "e1").Write([]byte("out"))
	assert.NilError(t, rt.ExitProcess("c1", "e1", 7))
	assert.Equal(t, <-got, "out")
	es, err := p.Delete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, es.ExitCode, uint32(7))

	// A start refused by the runtime.
	rt.FailOnce(OpProcessStart, &types.ProcessStartError{Reason: types.CommandNotFound, Msg: "exec: \"nope\": executable file not found in $PATH"})
	p2, err := task.Exec(ctx, "e2", &specs.Process{Args: []string{"nope"}}, types.IOConfig{})
	assert.NilError(t, err)
	err = p2.Start(ctx)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.NilError(t, p2.Start(ctx), "FailOnce fails once")

	// The init's exit kills the exec processes first.
	assert.NilError(t, rt.Exit("c1", 0))
	st, err := p2.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.ExitCode, uint32(137))
	_, err = task.Exec(ctx, "e3", &specs.Process{}, types.IOConfig{})
	assert.Check(t, errdefs.IsFailedPrecondition(err), "exec in a stopped task: %v", err)

	rt.WaitEvents()
	assert.Check(t, is.DeepEqual(rec.types("c1"), []types.EventType{types.EventCreate, types.EventStart,
		types.EventExecAdded, types.EventExecStarted, types.EventExit,
		types.EventExecAdded, types.EventExecStarted, types.EventExit, types.EventExit}))
	ev := rt.Events()
	assert.Equal(t, ev[len(ev)-2].Info.ProcessID, "e2")
	assert.Equal(t, ev[len(ev)-1].Info.ProcessID, "c1")
}

func TestReconnectAndErrors(t *testing.T) {
	ctx := context.Background()
	rt := NewRuntime()
	old := &recorder{}
	cl := rt.Connect(old.cb)
	newRunning(t, cl, "c1")
	assert.NilError(t, cl.Close())

	// A new daemon finds the task running and reattaches its output.
	rec := &recorder{}
	cl2 := rt.Connect(rec.cb)
	list, err := cl2.Containers(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(list), 1)
	task, err := list[0].Task(ctx, func(types.Stdio) error { return nil })
	assert.NilError(t, err)
	st, err := task.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.Status, types.StatusRunning)
	assert.NilError(t, rt.Exit("c1", 0))
	rt.WaitEvents()
	assert.Check(t, is.DeepEqual(rec.types("c1"), []types.EventType{types.EventExit}), "only the new client hears")
	assert.Check(t, is.DeepEqual(old.types("c1"), []types.EventType{types.EventCreate, types.EventStart}))

	rt.Fail(OpNewContainer, errdefs.ErrUnavailable)
	_, err = cl2.NewContainer(ctx, "c2", types.ContainerConfig{Spec: spec()})
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	rt.Fail(OpNewContainer, nil)
	_, err = cl2.NewContainer(ctx, "c2", types.ContainerConfig{Spec: spec()})
	assert.NilError(t, err)

	// Events emitted while containerd is unreachable are lost; Resync says so once it is back.
	task3 := newRunning(t, cl2, "c3")
	rt.SetDown(true)
	_, err = cl2.Version(ctx)
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	_, err = task3.Status(ctx)
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.NilError(t, rt.Exit("c3", 2))
	rt.SetDown(false)
	rt.Resync()
	rt.WaitEvents()
	assert.Check(t, is.DeepEqual(rec.types("c3"), []types.EventType{types.EventCreate, types.EventStart}))
	assert.Check(t, is.DeepEqual(rec.types(""), []types.EventType{types.EventResync}))
	st, err = task3.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.ExitCode, uint32(2))

	task4 := newRunning(t, cl2, "c4")
	assert.NilError(t, rt.Forget("c4"))
	_, err = task4.Status(ctx)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	rt.WaitEvents()
	assert.Check(t, is.DeepEqual(rec.types("c4"), []types.EventType{types.EventCreate, types.EventStart}), "no event")
}

func TestStdioAcrossReconnect(t *testing.T) {
	ctx := context.Background()
	rt := NewRuntime()
	cl := rt.Connect(nil)
	ctr, err := cl.NewContainer(ctx, "c1", types.ContainerConfig{Spec: spec()})
	assert.NilError(t, err)
	readAll := func(out chan<- string) types.StdioCallback {
		return func(s types.Stdio) error {
			go func() {
				var b []byte
				b, _ = io.ReadAll(s.Stdout)
				out <- string(b)
			}()
			go func() { _, _ = io.Copy(io.Discard, s.Stderr) }()
			return nil
		}
	}
	first := make(chan string, 1)
	task, err := ctr.NewTask(ctx, types.TaskConfig{IOConfig: types.IOConfig{FIFODir: "x", Stdio: readAll(first)}})
	assert.NilError(t, err)
	assert.NilError(t, task.Start(ctx))
	_, err = rt.Stdout("c1", "").Write([]byte("one "))
	assert.NilError(t, err)

	assert.NilError(t, cl.Close())
	assert.Equal(t, <-first, "one ", "the dead daemon's reader ends")
	_, err = rt.Stdout("c1", "").Write([]byte("two "))
	assert.NilError(t, err, "kept while nobody reads")

	cl2 := rt.Connect(nil)
	ctr2, err := cl2.LoadContainer(ctx, "c1")
	assert.NilError(t, err)
	second := make(chan string, 1)
	_, err = ctr2.Task(ctx, readAll(second))
	assert.NilError(t, err)
	_, err = rt.Stdout("c1", "").Write([]byte("three"))
	assert.NilError(t, err)
	assert.NilError(t, rt.Exit("c1", 0))
	assert.Equal(t, <-second, "two three")
}
