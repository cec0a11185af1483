package containers

import (
	"context"
	"syscall"
	"testing"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func testContainer(id, name string) *Container {
	return &Container{ID: id, Name: name, State: &State{}, Config: &ctypes.Config{}, HostConfig: &ctypes.HostConfig{}}
}

func TestStoreLookup(t *testing.T) {
	st := newStore()
	a, b := testContainer("abc123", "/one"), testContainer("abd456", "/two")
	st.add(a)
	st.add(b)

	for _, ref := range []string{"abc123", "one", "/one", "abc"} {
		c, err := st.get(ref)
		assert.NilError(t, err, ref)
		assert.Equal(t, c, a, ref)
	}
	_, err := st.get("ab")
	assert.Check(t, errdefs.IsInvalidArgument(err), "ambiguous prefix: %v", err)
	_, err = st.get("zzz")
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	_, err = st.get("")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)

	assert.Check(t, errdefs.IsConflict(st.reserveName("/two", "other")))
	st.drop(b)
	assert.Check(t, st.byExactID(b.ID) == nil)
	assert.NilError(t, st.reserveName("/two", "other"), "a dropped container's name is free")
	assert.Equal(t, len(st.list()), 1)
}

// fakeRunner is lifecycle as the restart policy sees it.
type fakeRunner struct{ started chan *Container }

func (f *fakeRunner) startLocked(ctx context.Context, c *Container) error { f.started <- c; return nil }
func (f *fakeRunner) stop(context.Context, *Container, syscall.Signal, time.Duration) error {
	return nil
}
func (f *fakeRunner) stopTimeout(*Container, *int) time.Duration           { return 0 }
func (f *fakeRunner) remove(context.Context, *Container, bool, bool) error { return nil }
func (f *fakeRunner) finishRemovals(context.Context)                       {}
func (f *fakeRunner) waitTeardowns(context.Context)                        {}

func TestRestartPolicy(t *testing.T) {
	life := &fakeRunner{started: make(chan *Container, 1)}
	rs := &restorer{store: newStore(), cfg: &Config{}, life: life}
	c := testContainer("abc", "/c")
	for _, tc := range []struct {
		policy  ctypes.RestartPolicy
		code    int
		manual  bool
		restart bool
	}{
		{ctypes.RestartPolicy{Name: ctypes.RestartPolicyAlways}, 0, false, true},
		{ctypes.RestartPolicy{Name: ctypes.RestartPolicyAlways}, 0, true, false},
		{ctypes.RestartPolicy{Name: ctypes.RestartPolicyUnlessStopped}, 1, false, true},
		{ctypes.RestartPolicy{Name: ctypes.RestartPolicyOnFailure}, 0, false, false},
		{ctypes.RestartPolicy{Name: ctypes.RestartPolicyOnFailure, MaximumRetryCount: 2}, 1, false, true},
		{ctypes.RestartPolicy{Name: ctypes.RestartPolicyDisabled}, 1, false, false},
	} {
		c.HostConfig.RestartPolicy, c.HasBeenManuallyStopped = tc.policy, tc.manual
		assert.Check(t, rs.shouldRestart(c, tc.code) == tc.restart, "%+v", tc)
	}

	// A scheduled restart starts the container through lifecycle.
	c.HostConfig.RestartPolicy, c.HasBeenManuallyStopped = ctypes.RestartPolicy{Name: ctypes.RestartPolicyAlways}, false
	c.mu.Lock()
	c.State.SetRestarting(1, time.Now())
	rs.scheduleRestart(context.Background(), c, 0)
	c.mu.Unlock()
	assert.Equal(t, <-life.started, c)
	assert.Equal(t, c.RestartCount, 1)

	// Once the daemon shuts down, no exit restarts a container.
	assert.NilError(t, rs.Shutdown(context.Background()))
	assert.Check(t, !rs.shouldRestart(c, 1))
}

// runningTask stands for a running task; the exec bookkeeping never calls it.
type runningTask struct{ ltypes.Task }

func TestExecBookkeeping(t *testing.T) {
	ctx := context.Background()
	st := newStore()
	s := &streamer{store: st, cfg: &Config{}, execs: map[string]*execConfig{}}
	c := testContainer("abc", "/c")
	c.execs = map[string]*execConfig{}
	st.add(c)

	_, err := s.ExecCreate(ctx, "c", ctypes.ExecOptions{Cmd: []string{"true"}})
	assert.Check(t, errdefs.IsConflict(err), "a stopped container has no execs: %v", err)

	c.task = runningTask{}
	c.State.SetRunning(1, true)
	id, err := s.ExecCreate(ctx, "c", ctypes.ExecOptions{Cmd: []string{"sh", "-c", "exit 3"}})
	assert.NilError(t, err)
	other, err := s.ExecCreate(ctx, "c", ctypes.ExecOptions{Cmd: []string{"sleep", "9"}})
	assert.NilError(t, err)

	// An exit event of the exec process records its code.
	s.execExited(id, 3)
	in, err := s.ExecInspect(ctx, id)
	assert.NilError(t, err)
	assert.Equal(t, *in.ExitCode, 3)
	assert.DeepEqual(t, in.ProcessConfig.Arguments, []string{"-c", "exit 3"})

	// The container stopping fails its started execs with 137; one never started gets no code.
	e, err := s.getExec(other)
	assert.NilError(t, err)
	e.started = true
	c.mu.Lock()
	s.failExecs(c)
	c.mu.Unlock()
	in, err = s.ExecInspect(ctx, other)
	assert.NilError(t, err)
	assert.Equal(t, *in.ExitCode, 137)
	assert.Equal(t, len(c.execs), 0)

	// Removing the container forgets its execs.
	s.forgetExecs(c)
	_, err = s.ExecInspect(ctx, id)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
}
