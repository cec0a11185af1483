package remote_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	v1stats "github.com/containerd/cgroups/stats/v1"
	v2stats "github.com/containerd/cgroups/v2/stats"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berthd/libcontainerd/remote"
	"github.com/berthd/berthd/libcontainerd/supervisor"
	"github.com/berthd/berthd/libcontainerd/supervisor/testutil"
	"github.com/berthd/berthd/libcontainerd/types"
)

// ns is per test process so that parallel runs never share runc state or cgroup parents.
var ns = fmt.Sprintf("berth-test-%d", os.Getpid())

type event struct {
	typ  types.EventType
	info types.EventInfo
}

// recorder collects events for waitFor.
type recorder struct {
	mu   sync.Mutex
	evs  []event
	cond chan struct{}
}

func newRecorder() *recorder { return &recorder{cond: make(chan struct{}, 1)} }

func (r *recorder) cb(_ context.Context, typ types.EventType, info types.EventInfo) {
	r.mu.Lock()
	r.evs = append(r.evs, event{typ, info})
	r.mu.Unlock()
	select {
	case r.cond <- struct{}{}:
	default:
	}
}

// waitFor returns the first event matching typ, container and process ("" matches any).
func (r *recorder) waitFor(t *testing.T, typ types.EventType, ctr, proc string) types.EventInfo {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		for _, e := range r.evs {
			if e.typ == typ && (ctr == "" || e.info.ContainerID == ctr) && (proc == "" || e.info.ProcessID == proc) {
				r.mu.Unlock()
				return e.info
			}
		}
		r.mu.Unlock()
		select {
		case <-r.cond:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s event for %s/%s; got %+v", typ, ctr, proc, r.evs)
		}
	}
}

// newRootfs builds a busybox-only root filesystem.
func newRootfs(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "rootfs")
	assert.NilError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Missing(t, "busybox-static: %v", err)
	}
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), b, 0o755))
	for _, l := range []string{"sh", "echo", "sleep", "cat", "true", "false"} {
		assert.NilError(t, os.Symlink("busybox", filepath.Join(dir, "bin", l)))
	}
	return dir
}

func spec(t *testing.T, id, rootfs string, opts ...oci.SpecOpts) *specs.Spec {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	opts = append([]oci.SpecOpts{oci.WithRootFSPath(rootfs), oci.WithDefaultPathEnv}, opts...)
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: id}, opts...)
	assert.NilError(t, err)
	return s
}

// output collects a process' stdout.
type output struct {
	mu     sync.Mutex
	buf    strings.Builder
	done   chan struct{}
	stdout io.Closer
}

func (o *output) stdio(s types.Stdio) error {
	o.done = make(chan struct{})
	o.stdout = s.Stdout
	go func() {
		defer close(o.done)
		b := make([]byte, 4096)
		for {
			n, err := s.Stdout.Read(b)
			o.mu.Lock()
			o.buf.Write(b[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return nil
}

func (o *output) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(30 * time.Second):
		t.Fatal("stdout did not reach EOF")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

type env struct {
	addr     string
	client   types.Client
	events   *recorder
	rootfs   string
	fifos    string
	runcRoot string
}

func setup(t *testing.T) *env {
	addr := testutil.StartContainerd(t)
	return newEnv(t, addr)
}

func newEnv(t *testing.T, addr string) *env {
	e := &env{addr: addr, events: newRecorder(), rootfs: newRootfs(t), fifos: t.TempDir(), runcRoot: t.TempDir()}
	t.Cleanup(func() {
		// runc leaves the namespace's parent cgroups behind.
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + ns)
		for _, d := range append(dirs, "/run/containerd/runc/"+ns) {
			os.Remove(d)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := remote.New(ctx, addr, ns, e.events.cb)
	assert.NilError(t, err)
	t.Cleanup(func() { c.Close() })
	e.client = c
	return e
}

// run creates and starts a container running args, with stdout collected.
func (e *env) run(t *testing.T, id string, args []string, opts ...oci.SpecOpts) (types.Container, types.Task, *output) {
	t.Helper()
	ctx := context.Background()
	opts = append(opts, oci.WithProcessArgs(args...))
	ctr, err := e.client.NewContainer(ctx, id, types.ContainerConfig{
		Spec:           spec(t, id, e.rootfs, opts...),
		Labels:         map[string]string{"test": t.Name()},
		RuntimeOptions: &types.RuntimeOptions{Root: e.runcRoot},
	})
	assert.NilError(t, err)
	t.Cleanup(func() {
		// A fresh client: the test may have closed its own, and a failed test must not leave
		// containers running after containerd stops.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := remote.New(ctx, e.addr, ns, nil)
		if err != nil {
			t.Logf("cleanup %s: %v", id, err)
			return
		}
		defer c.Close()
		ctr, err := c.LoadContainer(ctx, id)
		if err != nil {
			return
		}
		if tk, err := ctr.Task(ctx, nil); err == nil {
			if _, err := tk.ForceDelete(ctx); err != nil {
				t.Logf("cleanup %s: %v", id, err)
			}
		}
		ctr.Delete(ctx)
	})
	out := &output{}
	task, err := ctr.NewTask(ctx, types.TaskConfig{IOConfig: types.IOConfig{
		FIFODir: filepath.Join(e.fifos, id),
		Stdio:   out.stdio,
	}})
	assert.NilError(t, err)
	assert.Assert(t, task.Pid() > 0)
	assert.NilError(t, task.Start(ctx))
	return ctr, task, out
}

func TestRunHelloAndExitCode(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	v, err := e.client.Version(ctx)
	assert.NilError(t, err)
	assert.Assert(t, v != "")

	ctr, task, out := e.run(t, "hello", []string{"echo", "hello"})
	assert.Equal(t, out.wait(t), "hello\n")
	ex := e.events.waitFor(t, types.EventExit, "hello", "hello")
	assert.Equal(t, ex.ExitCode, uint32(0))
	assert.Equal(t, ex.Pid, task.Pid())
	e.events.waitFor(t, types.EventStart, "hello", "")
	st, err := task.Delete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.ExitCode, uint32(0))
	assert.Assert(t, !st.ExitedAt.IsZero())

	info, err := ctr.Info(ctx)
	assert.NilError(t, err)
	assert.Equal(t, info.Labels["test"], t.Name())
	assert.Equal(t, info.Runtime, types.DefaultRuntime)
	labels, err := ctr.SetLabels(ctx, map[string]string{"extra": "1"})
	assert.NilError(t, err)
	assert.DeepEqual(t, labels, map[string]string{"test": t.Name(), "extra": "1"})
	sp, err := ctr.Spec(ctx)
	assert.NilError(t, err)
	assert.DeepEqual(t, sp.Process.Args, []string{"echo", "hello"})
	_, err = ctr.Task(ctx, nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	_, task3, _ := e.run(t, "three", []string{"sh", "-c", "exit 3"})
	ex = e.events.waitFor(t, types.EventExit, "three", "three")
	assert.Equal(t, ex.ExitCode, uint32(3))
	assert.Assert(t, !ex.ExitedAt.IsZero())
	s, err := task3.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, s.Status, types.StatusStopped)
	assert.Equal(t, s.ExitCode, uint32(3))

	list, err := e.client.Containers(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 2))
}

func TestKillExecPausePids(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	// sleep is not pid 1 here (host pid namespace), so SIGTERM's default action applies.
	_, sleeper, _ := e.run(t, "sleeper", []string{"sleep", "100"}, oci.WithHostNamespace(specs.PIDNamespace))
	e.events.waitFor(t, types.EventStart, "sleeper", "")
	assert.NilError(t, sleeper.Kill(ctx, syscall.SIGTERM, false))
	ex := e.events.waitFor(t, types.EventExit, "sleeper", "sleeper")
	assert.Equal(t, ex.ExitCode, uint32(128+15))

	ctr, task, _ := e.run(t, "busy", []string{"sleep", "100"})
	_, err := os.Stat(filepath.Join(e.runcRoot, ns, "busy"))
	assert.NilError(t, err, "runc must keep its state in RuntimeOptions.Root")
	_, err = ctr.NewTask(ctx, types.TaskConfig{})
	assert.Check(t, errdefs.IsAlreadyExists(err), "%v", err)
	_, err = task.Delete(ctx)
	assert.Check(t, errdefs.IsFailedPrecondition(err), "%v", err)
	err = ctr.Delete(ctx)
	assert.Check(t, errdefs.IsFailedPrecondition(err), "%v", err)

	out := &output{}
	p, err := task.Exec(ctx, "exec1", &specs.Process{Args: []string{"echo", "hi"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		types.IOConfig{FIFODir: filepath.Join(e.fifos, "busy"), Stdio: out.stdio})
	assert.NilError(t, err)
	assert.NilError(t, p.Start(ctx))
	assert.Assert(t, p.Pid() > 0)
	assert.Equal(t, out.wait(t), "hi\n")
	ex = e.events.waitFor(t, types.EventExit, "busy", "exec1")
	assert.Equal(t, ex.ExitCode, uint32(0))
	st, err := p.Delete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.ExitCode, uint32(0))

	// A long exec shows up in Pids with its exec ID.
	p2, err := task.Exec(ctx, "exec2", &specs.Process{Args: []string{"sleep", "100"}, Cwd: "/", Env: []string{"PATH=/bin"}}, types.IOConfig{})
	assert.NilError(t, err)
	assert.NilError(t, p2.Start(ctx))
	_, err = task.Exec(ctx, "exec2", &specs.Process{Args: []string{"true"}, Cwd: "/"}, types.IOConfig{})
	assert.Check(t, errdefs.IsAlreadyExists(err), "%v", err)
	pids, err := task.Pids(ctx)
	assert.NilError(t, err)
	found := map[uint32]string{}
	for _, pi := range pids {
		found[pi.Pid] = pi.ProcessID
	}
	assert.Check(t, is.Contains(found, task.Pid()))
	assert.Check(t, is.Equal(found[p2.Pid()], "exec2"), "%v", pids)

	assert.NilError(t, task.Pause(ctx))
	e.events.waitFor(t, types.EventPaused, "busy", "")
	s, err := task.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, s.Status, types.StatusPaused)
	assert.NilError(t, task.Resume(ctx))
	e.events.waitFor(t, types.EventResumed, "busy", "")
	s, err = task.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, s.Status, types.StatusRunning)

	stats, err := task.Stats(ctx)
	assert.NilError(t, err)
	switch m := stats.Metrics.(type) {
	case *v1stats.Metrics:
		assert.Check(t, m.Pids != nil && m.Pids.Current >= 2, "%+v", m.Pids)
	case *v2stats.Metrics:
		assert.Check(t, m.Pids != nil && m.Pids.Current >= 2, "%+v", m.Pids)
	default:
		t.Fatalf("unexpected metrics type %T", m)
	}

	limit := int64(64 << 20)
	assert.NilError(t, task.UpdateResources(ctx, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}))

	st, err = task.ForceDelete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.ExitCode, uint32(128+9))
	assert.NilError(t, ctr.Delete(ctx))
	_, err = e.client.LoadContainer(ctx, "busy")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
}

func TestErrors(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	cfg := types.ContainerConfig{Spec: spec(t, "dup", e.rootfs, oci.WithProcessArgs("true"))}
	ctr, err := e.client.NewContainer(ctx, "dup", cfg)
	assert.NilError(t, err)
	defer ctr.Delete(ctx)
	_, err = e.client.NewContainer(ctx, "dup", cfg)
	assert.Check(t, errdefs.IsAlreadyExists(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "dup"))

	_, err = e.client.LoadContainer(ctx, "nope")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	_, err = e.client.NewContainer(ctx, "bad/id", cfg)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = e.client.NewContainer(ctx, "nospec", types.ContainerConfig{})
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	_, err = remote.New(ctx, e.addr, "", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)

	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = remote.New(dctx, "/tmp/no-such-containerd.sock", ns, nil)
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)

	// Namespaces are separate: another namespace's client does not see the container.
	other, err := remote.New(ctx, e.addr, "plugins.berth-test", nil)
	assert.NilError(t, err)
	defer other.Close()
	_, err = other.LoadContainer(ctx, "dup")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
}

// TestReattach simulates a daemon restart: a second client loads the running container, reattaches to
// its stdout FIFO and receives its exit event.
func TestReattach(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	_, t1, first := e.run(t, "ticker", []string{"sh", "-c", "while true; do echo tick; sleep 0.2; done"})
	execOut := &output{}
	p1, err := t1.Exec(ctx, "sleeper", &specs.Process{Args: []string{"sh", "-c", "while true; do echo tock; sleep 0.2; done"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		types.IOConfig{FIFODir: filepath.Join(e.fifos, "ticker"), Stdio: execOut.stdio})
	assert.NilError(t, err)
	assert.NilError(t, p1.Start(ctx))
	// The first "daemon" dies: its FIFO ends close, the task is left alone.
	first.stdout.Close()
	execOut.stdout.Close()
	assert.NilError(t, e.client.Close())

	events := newRecorder()
	c2, err := remote.New(ctx, e.addr, ns, events.cb)
	assert.NilError(t, err)
	defer c2.Close()
	ctr, err := c2.LoadContainer(ctx, "ticker")
	assert.NilError(t, err)
	lines := make(chan string, 100)
	task, err := ctr.Task(ctx, func(s types.Stdio) error {
		go func() {
			sc := bufio.NewScanner(s.Stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		return nil
	})
	assert.NilError(t, err)
	assert.Assert(t, task.Pid() > 0)
	s, err := task.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, s.Status, types.StatusRunning)
	select {
	case l := <-lines:
		assert.Equal(t, l, "tick")
	case <-time.After(10 * time.Second):
		t.Fatal("no output through the reattached FIFO")
	}
	// The exec comes back too, with its pid and its output.
	execLines := make(chan string, 100)
	p2, err := task.LoadProcess(ctx, "sleeper", func(s types.Stdio) error {
		go func() {
			sc := bufio.NewScanner(s.Stdout)
			for sc.Scan() {
				execLines <- sc.Text()
			}
		}()
		return nil
	})
	assert.NilError(t, err)
	assert.Equal(t, p2.Pid(), p1.Pid())
	select {
	case l := <-execLines:
		assert.Equal(t, l, "tock")
	case <-time.After(10 * time.Second):
		t.Fatal("no output through the reattached exec FIFO")
	}
	assert.NilError(t, p2.Kill(ctx, syscall.SIGKILL))
	ex := events.waitFor(t, types.EventExit, "ticker", "sleeper")
	assert.Equal(t, ex.ExitCode, uint32(128+9))
	pst, err := p2.Delete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, pst.ExitCode, uint32(128+9))
	_, err = task.LoadProcess(ctx, "sleeper", nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	assert.NilError(t, task.Kill(ctx, syscall.SIGKILL, true))
	ex = events.waitFor(t, types.EventExit, "ticker", "ticker")
	assert.Equal(t, ex.ExitCode, uint32(128+9))
	st, err := task.Delete(ctx)
	assert.NilError(t, err)
	assert.Equal(t, st.ExitCode, uint32(128+9))
}

// TestContainerdRestart checks that the event subscription comes back (with a resync event) after the
// supervisor restarts a crashed containerd, and that running tasks survive it.
func TestContainerdRestart(t *testing.T) {
	restarted := make(chan int, 4)
	sup := testutil.Start(t, supervisor.Config{OnRestart: func(pid int) { restarted <- pid }})
	e := newEnv(t, sup.Address())
	ctx := context.Background()

	_, task, _ := e.run(t, "survivor", []string{"sleep", "100"})
	e.events.waitFor(t, types.EventStart, "survivor", "")
	assert.NilError(t, syscall.Kill(sup.Pid(), syscall.SIGKILL))
	select {
	case <-restarted:
	case <-time.After(30 * time.Second):
		t.Fatal("containerd not restarted")
	}
	e.events.waitFor(t, types.EventResync, "", "")

	s, err := task.Status(ctx)
	assert.NilError(t, err)
	assert.Equal(t, s.Status, types.StatusRunning)
	assert.NilError(t, task.Kill(ctx, syscall.SIGKILL, false))
	ex := e.events.waitFor(t, types.EventExit, "survivor", "survivor")
	assert.Equal(t, ex.ExitCode, uint32(128+9))

	_, _, out := e.run(t, "after", []string{"echo", "after"})
	assert.Equal(t, out.wait(t), "after\n")
	e.events.waitFor(t, types.EventExit, "after", "after")
}
