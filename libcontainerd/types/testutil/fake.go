// Package testutil is an in-memory fake of libcontainerd/types for unit tests of the services built on
// it (daemon/containers, the managed-plugin executor): a Runtime stands for containerd (one namespace's
// containers, tasks and exec processes) and Connect gives a types.Client on it. It is test support only:
// nothing in the daemon imports it, and integration tests use the real containerd.
//
// It mirrors libcontainerd/remote's semantics, so that what a service does with the fake is what it
// does with containerd:
//   - events go to the EventCallback asynchronously, in order per container, different containers
//     concurrently: TaskCreate at NewTask, TaskStart at Start, exit (the exec processes' exits before the
//     init's), OOM, exec-added, exec-started, paused, resumed, delete;
//   - errors carry containerd/errdefs classes: NotFound (no such container, task or process; signalling
//     one that exited), AlreadyExists, FailedPrecondition (deleting what runs, pausing what does not run),
//     InvalidArgument, Unavailable (SetDown);
//   - Delete returns the exit code and time of the deleted process; a task's stdio reaches EOF when its
//     process exits.
//
// Processes do nothing by themselves: the test decides when they exit (Exit, ExitProcess), what they
// write (Stdout, Stderr) and which signals they ignore (IgnoreSignal). A signal they do not ignore ends
// them with 128+signal, as an unhandled signal does (SIGCHLD, SIGCONT, SIGURG and SIGWINCH are ignored by
// default, as in Linux). A paused task receives no signal but SIGKILL until resumed.
//
// A Runtime outlives its clients: Close one, Connect another with a new callback, and the tasks are
// still there, which is how a test restarts the daemon over live containers (live-restore). Closing a
// client ends its readers of the processes' stdio (EOF), as the death of a daemon closes its FIFO ends;
// what the processes write meanwhile is kept and handed to the next daemon that reattaches
// (Container.Task or Task.LoadProcess with a callback, which must read the streams it gets).
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthd/berthd/libcontainerd/types"
)

// Op names a fake operation for error injection.
type Op string

// Operations whose errors can be injected with Fail and FailOnce.
const (
	OpVersion         Op = "Version"
	OpNewContainer    Op = "NewContainer"
	OpLoadContainer   Op = "LoadContainer"
	OpContainers      Op = "Containers"
	OpContainerDelete Op = "Container.Delete"
	OpNewTask         Op = "Container.NewTask"
	OpLoadTask        Op = "Container.Task"
	OpTaskStart       Op = "Task.Start"
	OpTaskKill        Op = "Task.Kill"
	OpTaskStatus      Op = "Task.Status"
	OpTaskPause       Op = "Task.Pause"
	OpTaskResume      Op = "Task.Resume"
	OpTaskDelete      Op = "Task.Delete"
	OpExec            Op = "Task.Exec"
	OpLoadProcess     Op = "Task.LoadProcess"
	OpProcessStart    Op = "Process.Start"
	OpProcessKill     Op = "Process.Kill"
	OpProcessDelete   Op = "Process.Delete"
)

// Event is one delivered event, as Events lists them.
type Event struct {
	Type types.EventType
	Info types.EventInfo
}

// Runtime is the fake containerd. Its methods are safe for concurrent use.
type Runtime struct {
	mu         sync.Mutex
	containers map[string]*ctrState
	clients    []*client
	nextPid    uint32
	fixedPid   uint32
	down       bool
	fail       map[Op]error
	failOnce   map[Op]error
	events     []Event

	q queue
}

// NewRuntime returns an empty fake containerd.
func NewRuntime() *Runtime {
	return &Runtime{containers: map[string]*ctrState{}, nextPid: 1000, fail: map[Op]error{}, failOnce: map[Op]error{}}
}

type ctrState struct {
	id      string
	cfg     types.ContainerConfig
	info    types.ContainerInfo
	task    *taskState
	deleted bool
}

type taskState struct {
	ctr       *ctrState
	init      *procState
	execs     map[string]*procState
	paused    bool
	pending   []syscall.Signal // signals held while paused
	resources *specs.LinuxResources
	rootfs    []types.Mount
	deleted   bool
}

type procState struct {
	id       string // exec ID, or the container ID for init
	pid      uint32
	status   types.Status
	exitCode uint32
	exitedAt time.Time
	spec     *specs.Process
	ignored  map[syscall.Signal]bool
	signals  []syscall.Signal
	width    uint32
	height   uint32
	deleted  bool

	stdio       bool
	terminal    bool
	stdinWanted bool
	owner       *client // whose daemon reads the stdio
	// detached: the reading daemon died (its client closed); output waits in held, as in a FIFO,
	// until a new daemon reattaches.
	detached    bool
	held        [2]bytes.Buffer
	stdinClosed bool
	stdinR      *io.PipeReader
	stdoutW     *io.PipeWriter
	stderrW     *io.PipeWriter
}

func defaultIgnored() map[syscall.Signal]bool {
	return map[syscall.Signal]bool{0: true, syscall.SIGCHLD: true, syscall.SIGCONT: true, syscall.SIGURG: true, syscall.SIGWINCH: true}
}

// Connect returns a client of the runtime whose events go to cb (nil drops them). Every open client gets
// every event, as every subscriber of a containerd namespace does.
func (r *Runtime) Connect(cb types.EventCallback) types.Client {
	if cb == nil {
		cb = func(context.Context, types.EventType, types.EventInfo) {}
	}
	c := &client{rt: r, cb: cb}
	r.mu.Lock()
	r.clients = append(r.clients, c)
	r.mu.Unlock()
	return c
}

// SetPid gives every process created from now on pid (0: a fresh pid each, the default). Services
// that look into /proc/<pid> of a container's process (its root, for user names) need a pid that
// exists there: the test's own, os.Getpid().
func (r *Runtime) SetPid(pid uint32) {
	r.mu.Lock()
	r.fixedPid = pid
	r.mu.Unlock()
}

// Fail makes every call of op fail with err until Fail(op, nil).
func (r *Runtime) Fail(op Op, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.fail, op)
		return
	}
	r.fail[op] = err
}

// FailOnce makes the next call of op fail with err.
func (r *Runtime) FailOnce(op Op, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failOnce[op] = err
}

// SetDown makes every call fail with Unavailable (containerd unreachable) until SetDown(false). Events
// emitted meanwhile are lost, as with a broken event stream; Resync announces the stream's return.
func (r *Runtime) SetDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// injected returns the error to fail op with; r.mu is held.
func (r *Runtime) injected(op Op) error {
	if r.down {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("%s: connection error: containerd is down", op))
	}
	if err, ok := r.failOnce[op]; ok {
		delete(r.failOnce, op)
		return err
	}
	return r.fail[op]
}

// emit queues an event for every open client; r.mu is held.
func (r *Runtime) emit(typ types.EventType, info types.EventInfo) {
	if r.down {
		return
	}
	cbs := make([]types.EventCallback, 0, len(r.clients))
	for _, c := range r.clients {
		if !c.closed {
			cbs = append(cbs, c.cb)
		}
	}
	r.q.append(info.ContainerID, func() {
		r.mu.Lock()
		r.events = append(r.events, Event{Type: typ, Info: info})
		r.mu.Unlock()
		for _, cb := range cbs {
			cb(context.Background(), typ, info)
		}
	})
}

// Resync delivers EventResync, as the real client does when the event stream is re-established.
func (r *Runtime) Resync() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emit(types.EventResync, types.EventInfo{})
}

// WaitEvents returns once every event emitted so far has been handled by the callbacks.
func (r *Runtime) WaitEvents() { r.q.wait() }

// Events lists the events delivered so far, in delivery order.
func (r *Runtime) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// task returns the live task of container id; r.mu is held.
func (r *Runtime) task(id string) (*taskState, error) {
	ct, ok := r.containers[id]
	if !ok || ct.task == nil {
		return nil, errdefs.ErrNotFound.WithMessage("no running task found: task " + id + " not found")
	}
	return ct.task, nil
}

// process returns init (processID "" or the container ID) or an exec process; r.mu is held.
func (r *Runtime) process(id, processID string) (*taskState, *procState, error) {
	t, err := r.task(id)
	if err != nil {
		return nil, nil, err
	}
	if processID == "" || processID == id {
		return t, t.init, nil
	}
	p, ok := t.execs[processID]
	if !ok {
		return nil, nil, errdefs.ErrNotFound.WithMessage("process " + processID + " not found")
	}
	return t, p, nil
}

// Exit ends container id's init process with code: its exec processes are killed first (137), their
// stdio and the init's reach EOF, and the exit events are delivered. NotFound without a live task.
func (r *Runtime) Exit(id string, code int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, err := r.task(id)
	if err != nil {
		return err
	}
	if t.init.status == types.StatusStopped {
		return errdefs.ErrNotFound.WithMessage("process already finished")
	}
	r.exitInit(t, uint32(code))
	return nil
}

// ExitProcess ends exec process execID of container id with code.
func (r *Runtime) ExitProcess(id, execID string, code int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, p, err := r.process(id, execID)
	if err != nil {
		return err
	}
	if p == t.init {
		r.exitInit(t, uint32(code))
		return nil
	}
	if p.status != types.StatusRunning {
		return errdefs.ErrFailedPrecondition.WithMessage("process " + execID + " is not running")
	}
	r.exitProc(t, p, uint32(code))
	return nil
}

func (r *Runtime) exitInit(t *taskState, code uint32) {
	for _, p := range t.execs {
		if p.status == types.StatusRunning {
			r.exitProc(t, p, 128+uint32(syscall.SIGKILL))
		}
	}
	t.paused = false
	t.pending = nil
	r.exitProc(t, t.init, code)
}

func (r *Runtime) exitProc(t *taskState, p *procState, code uint32) {
	p.status, p.exitCode, p.exitedAt = types.StatusStopped, code, time.Now()
	p.closeStdio()
	r.emit(types.EventExit, types.EventInfo{ContainerID: t.ctr.id, ProcessID: p.id, Pid: p.pid, ExitCode: code, ExitedAt: p.exitedAt})
}

// Forget makes container id's task vanish without an event, as when containerd lost its state
// (a restart that wiped the shim's state directory): later calls on it are NotFound.
func (r *Runtime) Forget(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, err := r.task(id)
	if err != nil {
		return err
	}
	t.init.closeStdio()
	for _, p := range t.execs {
		p.closeStdio()
	}
	t.deleted = true
	t.ctr.task = nil
	return nil
}

// OOM delivers the task's OOM event (the kernel's OOM killer struck); the test then ends the process,
// usually with Exit(id, 137).
func (r *Runtime) OOM(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.task(id); err != nil {
		return err
	}
	r.emit(types.EventOOM, types.EventInfo{ContainerID: id, ProcessID: id})
	return nil
}

// IgnoreSignal makes a process of container id (processID "" for init) survive sig. SIGKILL cannot be
// ignored.
func (r *Runtime) IgnoreSignal(id, processID string, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, p, err := r.process(id, processID)
	if err != nil {
		return err
	}
	if sig != syscall.SIGKILL {
		p.ignored[sig] = true
	}
	return nil
}

// Signals lists the signals a process (processID "" for init) received, ignored ones included.
func (r *Runtime) Signals(id, processID string) []syscall.Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, p, err := r.process(id, processID)
	if err != nil {
		return nil
	}
	return append([]syscall.Signal(nil), p.signals...)
}

// Stdout is where a process (processID "" for init) writes its standard output; with a terminal it
// carries both streams. It discards when the process has no stdio callback; writes block until the
// daemon reads, as on a FIFO, and fail once the process exited.
func (r *Runtime) Stdout(id, processID string) io.Writer {
	return r.writer(id, processID, false)
}

// Stderr is Stdout's counterpart for standard error (discarding with a terminal).
func (r *Runtime) Stderr(id, processID string) io.Writer {
	return r.writer(id, processID, true)
}

func (r *Runtime) writer(id, processID string, stderr bool) io.Writer {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, p, err := r.process(id, processID)
	if err != nil {
		return errWriter{err}
	}
	if p.detached && !(stderr && p.terminal) {
		i := 0
		if stderr {
			i = 1
		}
		return heldWriter{r, &p.held[i]}
	}
	w := p.stdoutW
	if stderr {
		w = p.stderrW
	}
	if w == nil {
		return io.Discard
	}
	return w
}

// heldWriter keeps what a process writes while no daemon reads its stdio.
type heldWriter struct {
	r *Runtime
	b *bytes.Buffer
}

func (w heldWriter) Write(b []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.b.Write(b)
}

// reattach gives p new stdio pipes for a daemon reattaching through c; the returned func, called once
// the daemon's callback runs, hands over what was written meanwhile. rt.mu is held.
func (p *procState) reattach(c *client) (types.Stdio, func()) {
	p.closeStdio()
	stdio := p.openStdio(p.terminal, p.stdinWanted)
	p.owner = c
	out, errb := p.held[0].Bytes(), p.held[1].Bytes()
	p.held[0], p.held[1] = bytes.Buffer{}, bytes.Buffer{}
	stdout, stderr := p.stdoutW, p.stderrW
	stopped := p.status == types.StatusStopped
	return stdio, func() {
		if len(out) > 0 {
			_, _ = stdout.Write(out)
		}
		if len(errb) > 0 && stderr != nil {
			_, _ = stderr.Write(errb)
		}
		if stopped {
			stdout.Close()
			if stderr != nil {
				stderr.Close()
			}
		}
	}
}

// detach closes the stdio of the processes whose daemon (client c) went away.
func (r *Runtime) detach(c *client) {
	for _, ct := range r.containers {
		if ct.task == nil {
			continue
		}
		procs := []*procState{ct.task.init}
		for _, e := range ct.task.execs {
			procs = append(procs, e)
		}
		for _, p := range procs {
			if p.owner == c && p.stdio && !p.detached && p.status != types.StatusStopped {
				p.closeStdio()
				p.detached = true
			}
		}
	}
}

// Stdin is what a process reads on its standard input (nil without a stdin stream).
func (r *Runtime) Stdin(id, processID string) io.Reader {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, p, err := r.process(id, processID)
	if err != nil || p.stdinR == nil {
		return nil
	}
	return p.stdinR
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// ProcessInfo is what the test can observe of a process.
type ProcessInfo struct {
	Status      types.Status
	Pid         uint32
	ExitCode    uint32
	Spec        *specs.Process // exec processes only
	Width       uint32
	Height      uint32
	StdinClosed bool
}

// Process describes a process of container id (processID "" for init); NotFound when there is none.
func (r *Runtime) Process(id, processID string) (ProcessInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, p, err := r.process(id, processID)
	if err != nil {
		return ProcessInfo{}, err
	}
	st := p.status
	if p == t.init && t.paused {
		st = types.StatusPaused
	}
	return ProcessInfo{Status: st, Pid: p.pid, ExitCode: p.exitCode, Spec: p.spec, Width: p.width, Height: p.height, StdinClosed: p.stdinClosed}, nil
}

// HasContainer tells whether containerd has a record of container id.
func (r *Runtime) HasContainer(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.containers[id]
	return ok
}

// HasTask tells whether container id has a task (running or not yet deleted).
func (r *Runtime) HasTask(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ct, ok := r.containers[id]
	return ok && ct.task != nil
}

// ContainerConfig returns the configuration container id was created with.
func (r *Runtime) ContainerConfig(id string) (types.ContainerConfig, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ct, ok := r.containers[id]
	if !ok {
		return types.ContainerConfig{}, errdefs.ErrNotFound.WithMessage("container " + id + " not found")
	}
	return ct.cfg, nil
}

// Resources returns the last UpdateResources of container id's task.
func (r *Runtime) Resources(id string) *specs.LinuxResources {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, err := r.task(id)
	if err != nil {
		return nil
	}
	return t.resources
}

// newProc makes a created process with the stdio io asks for, and hands the daemon's ends to the
// callback outside r.mu (it may call back into the client).
func (r *Runtime) newProc(c *client, id string, cfg types.IOConfig) (*procState, error) {
	r.mu.Lock()
	r.nextPid++
	pid := r.nextPid
	if r.fixedPid != 0 {
		pid = r.fixedPid
	}
	p := &procState{id: id, pid: pid, status: types.StatusCreated, ignored: defaultIgnored(), owner: c}
	r.mu.Unlock()
	if cfg.FIFODir == "" || cfg.Stdio == nil {
		return p, nil
	}
	stdio := p.openStdio(cfg.Terminal, cfg.Stdin)
	if err := cfg.Stdio(stdio); err != nil {
		p.closeStdio()
		return nil, err
	}
	return p, nil
}

// openStdio makes the pipes of a process and returns the daemon's ends.
func (p *procState) openStdio(terminal, stdin bool) types.Stdio {
	p.stdio, p.terminal, p.stdinWanted, p.detached = true, terminal, stdin, false
	var s types.Stdio
	var r *io.PipeReader
	r, p.stdoutW = io.Pipe()
	s.Stdout = r
	if !terminal {
		r, p.stderrW = io.Pipe()
		s.Stderr = r
	}
	if stdin {
		var w *io.PipeWriter
		p.stdinR, w = io.Pipe()
		s.Stdin = w
	}
	return s
}

func (p *procState) closeStdio() {
	if p.stdoutW != nil {
		p.stdoutW.Close()
	}
	if p.stderrW != nil {
		p.stderrW.Close()
	}
	if p.stdinR != nil {
		p.stdinR.Close()
	}
}

// signal applies sig to p as the kernel would; r.mu is held.
func (r *Runtime) signal(t *taskState, p *procState, sig syscall.Signal) {
	p.signals = append(p.signals, sig)
	if p.ignored[sig] && sig != syscall.SIGKILL {
		return
	}
	if p == t.init {
		r.exitInit(t, 128+uint32(sig))
		return
	}
	r.exitProc(t, p, 128+uint32(sig))
}

// queue runs functions in order per key and different keys concurrently, as the real client's event
// queue; wait returns when it is empty.
type queue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending map[string][]func()
	busy    int
}

func (q *queue) append(key string, f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string][]func(){}
		q.cond = sync.NewCond(&q.mu)
	}
	fs, running := q.pending[key]
	q.pending[key] = append(fs, f)
	q.busy++
	if !running {
		go q.run(key)
	}
}

func (q *queue) run(key string) {
	for {
		q.mu.Lock()
		fs := q.pending[key]
		if len(fs) == 0 {
			delete(q.pending, key)
			q.mu.Unlock()
			return
		}
		f := fs[0]
		q.pending[key] = fs[1:]
		q.mu.Unlock()
		f()
		q.mu.Lock()
		q.busy--
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

func (q *queue) wait() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.busy > 0 {
		q.cond.Wait()
	}
}
