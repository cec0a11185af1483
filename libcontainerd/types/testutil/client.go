package testutil

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthd/berthd/libcontainerd/types"
)

// Version is the containerd version the fake reports.
const Version = "1.7.0-fake"

type client struct {
	rt     *Runtime
	cb     types.EventCallback
	closed bool // under rt.mu
}

var _ types.Client = (*client)(nil)

func (c *client) Version(ctx context.Context) (string, error) {
	c.rt.mu.Lock()
	defer c.rt.mu.Unlock()
	if err := c.rt.injected(OpVersion); err != nil {
		return "", err
	}
	return Version, nil
}

func (c *client) Close() error {
	c.rt.mu.Lock()
	c.closed = true
	c.rt.detach(c)
	c.rt.mu.Unlock()
	return nil
}

func (c *client) NewContainer(ctx context.Context, id string, cfg types.ContainerConfig) (types.Container, error) {
	r := c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpNewContainer); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("create container: id must not be empty")
	}
	if cfg.Spec == nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("create container %s: no OCI spec", id))
	}
	if (cfg.Snapshotter == "") != (cfg.SnapshotKey == "") {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("create container %s: snapshotter and snapshot key go together", id))
	}
	if _, ok := r.containers[id]; ok {
		return nil, errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("container %s already exists", id))
	}
	if cfg.Runtime == "" {
		cfg.Runtime = types.DefaultRuntime
	}
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	now := time.Now()
	ct := &ctrState{id: id, cfg: cfg, info: types.ContainerInfo{ID: id, Labels: labels, Runtime: cfg.Runtime,
		Snapshotter: cfg.Snapshotter, SnapshotKey: cfg.SnapshotKey, CreatedAt: now, UpdatedAt: now}}
	r.containers[id] = ct
	return &container{c: c, ct: ct}, nil
}

func (c *client) LoadContainer(ctx context.Context, id string) (types.Container, error) {
	r := c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpLoadContainer); err != nil {
		return nil, err
	}
	ct, ok := r.containers[id]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("load container %s: container \"%s\" in namespace: not found", id, id))
	}
	return &container{c: c, ct: ct}, nil
}

func (c *client) Containers(ctx context.Context) ([]types.Container, error) {
	r := c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpContainers); err != nil {
		return nil, err
	}
	out := make([]types.Container, 0, len(r.containers))
	for _, ct := range r.containers {
		out = append(out, &container{c: c, ct: ct})
	}
	return out, nil
}

type container struct {
	c  *client
	ct *ctrState
}

var _ types.Container = (*container)(nil)

func (h *container) ID() string { return h.ct.id }

// live fails with Unavailable while containerd is down, with NotFound once the record was deleted; rt.mu is held.
func (h *container) live() error {
	if err := h.c.rt.injected(""); err != nil {
		return err
	}
	if h.ct.deleted {
		return errdefs.ErrNotFound.WithMessage("container \"" + h.ct.id + "\" in namespace: not found")
	}
	return nil
}

func (h *container) Info(ctx context.Context) (types.ContainerInfo, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return types.ContainerInfo{}, err
	}
	info := h.ct.info
	info.Labels = copyMap(info.Labels)
	return info, nil
}

func (h *container) SetLabels(ctx context.Context, labels map[string]string) (map[string]string, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return nil, err
	}
	for k, v := range labels {
		h.ct.info.Labels[k] = v
	}
	h.ct.info.UpdatedAt = time.Now()
	return copyMap(h.ct.info.Labels), nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (h *container) Spec(ctx context.Context) (*specs.Spec, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return nil, err
	}
	return h.ct.cfg.Spec, nil
}

func (h *container) Delete(ctx context.Context) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpContainerDelete); err != nil {
		return err
	}
	if err := h.live(); err != nil {
		return err
	}
	if h.ct.task != nil {
		return errdefs.ErrFailedPrecondition.WithMessage("cannot delete container " + h.ct.id + ": task must be deleted first")
	}
	h.ct.deleted = true
	delete(r.containers, h.ct.id)
	return nil
}

func (h *container) NewTask(ctx context.Context, cfg types.TaskConfig) (types.Task, error) {
	r := h.c.rt
	r.mu.Lock()
	if err := r.injected(OpNewTask); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if err := h.live(); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if h.ct.task != nil {
		r.mu.Unlock()
		return nil, errdefs.ErrAlreadyExists.WithMessage("task " + h.ct.id + ": already exists")
	}
	if sp := h.ct.cfg.Spec; sp.Process != nil && sp.Process.Terminal != cfg.Terminal {
		r.mu.Unlock()
		return nil, errdefs.ErrInvalidArgument.WithMessage("task " + h.ct.id + ": terminal does not match the spec's")
	}
	r.mu.Unlock()
	p, err := r.newProc(h.c, h.ct.id, cfg.IOConfig)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.ct.task != nil {
		p.closeStdio()
		return nil, errdefs.ErrAlreadyExists.WithMessage("task " + h.ct.id + ": already exists")
	}
	t := &taskState{ctr: h.ct, init: p, execs: map[string]*procState{}, rootfs: cfg.Rootfs}
	h.ct.task = t
	r.emit(types.EventCreate, types.EventInfo{ContainerID: h.ct.id, ProcessID: h.ct.id, Pid: p.pid})
	return &task{c: h.c, t: t}, nil
}

func (h *container) Task(ctx context.Context, attach types.StdioCallback) (types.Task, error) {
	r := h.c.rt
	r.mu.Lock()
	if err := r.injected(OpLoadTask); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	t := h.ct.task
	if t == nil || h.ct.deleted {
		r.mu.Unlock()
		return nil, errdefs.ErrNotFound.WithMessage("no running task found: task " + h.ct.id + " not found")
	}
	var (
		stdio types.Stdio
		flush func()
	)
	reattach := attach != nil && t.init.stdio
	if reattach {
		// The FIFOs are the same, the reader is new: whoever read them before (a daemon that died)
		// reads no more.
		stdio, flush = t.init.reattach(h.c)
	}
	r.mu.Unlock()
	if reattach {
		if err := attach(stdio); err != nil {
			return nil, err
		}
		flush()
	}
	return &task{c: h.c, t: t}, nil
}

type task struct {
	c *client
	t *taskState
}

var _ types.Task = (*task)(nil)

func (h *task) ID() string  { return h.t.ctr.id }
func (h *task) Pid() uint32 { return h.t.init.pid }

// live fails with Unavailable while containerd is down, with NotFound once the task was deleted; rt.mu is held.
func (h *task) live() error {
	if err := h.c.rt.injected(""); err != nil {
		return err
	}
	if h.t.deleted {
		return errdefs.ErrNotFound.WithMessage("no running task found: task " + h.t.ctr.id + " not found")
	}
	return nil
}

func (h *task) Start(ctx context.Context) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpTaskStart); err != nil {
		return err
	}
	if err := h.live(); err != nil {
		return err
	}
	if h.t.init.status != types.StatusCreated {
		return errdefs.ErrFailedPrecondition.WithMessage("task " + h.t.ctr.id + " is " + string(h.t.init.status) + ", not created")
	}
	h.t.init.status = types.StatusRunning
	r.emit(types.EventStart, types.EventInfo{ContainerID: h.t.ctr.id, ProcessID: h.t.ctr.id, Pid: h.t.init.pid})
	return nil
}

func (h *task) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpTaskKill); err != nil {
		return err
	}
	if err := h.live(); err != nil {
		return err
	}
	t := h.t
	if t.init.status != types.StatusRunning {
		return errdefs.ErrNotFound.WithMessage("process already finished")
	}
	if all {
		for _, p := range t.execs {
			if p.status == types.StatusRunning && (!t.paused || sig == syscall.SIGKILL) {
				r.signal(t, p, sig)
			}
		}
	}
	if t.paused && sig != syscall.SIGKILL {
		t.init.signals = append(t.init.signals, sig)
		t.pending = append(t.pending, sig)
		return nil
	}
	r.signal(t, t.init, sig)
	return nil
}

func (h *task) Status(ctx context.Context) (types.ProcessStatus, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpTaskStatus); err != nil {
		return types.ProcessStatus{}, err
	}
	if err := h.live(); err != nil {
		return types.ProcessStatus{}, err
	}
	return h.t.status(), nil
}

func (t *taskState) status() types.ProcessStatus {
	p := t.init
	if p.status == types.StatusStopped {
		return types.ProcessStatus{Status: types.StatusStopped, ExitCode: p.exitCode, ExitedAt: p.exitedAt}
	}
	if t.paused {
		return types.ProcessStatus{Status: types.StatusPaused}
	}
	return types.ProcessStatus{Status: p.status}
}

func (h *task) Pause(ctx context.Context) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpTaskPause); err != nil {
		return err
	}
	if err := h.live(); err != nil {
		return err
	}
	if h.t.init.status != types.StatusRunning || h.t.paused {
		return errdefs.ErrFailedPrecondition.WithMessage("cannot pause task " + h.t.ctr.id + ": " + string(h.t.status().Status))
	}
	h.t.paused = true
	r.emit(types.EventPaused, types.EventInfo{ContainerID: h.t.ctr.id, ProcessID: h.t.ctr.id})
	return nil
}

func (h *task) Resume(ctx context.Context) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpTaskResume); err != nil {
		return err
	}
	if err := h.live(); err != nil {
		return err
	}
	t := h.t
	if !t.paused {
		return errdefs.ErrFailedPrecondition.WithMessage("cannot resume task " + t.ctr.id + ": not paused")
	}
	t.paused = false
	r.emit(types.EventResumed, types.EventInfo{ContainerID: t.ctr.id, ProcessID: t.ctr.id})
	pending := t.pending
	t.pending = nil
	for _, sig := range pending {
		if t.init.status != types.StatusRunning {
			break
		}
		// Recorded when sent; delivered now.
		t.init.signals = t.init.signals[:len(t.init.signals)-1]
		r.signal(t, t.init, sig)
	}
	return nil
}

func (h *task) Exec(ctx context.Context, processID string, spec *specs.Process, cfg types.IOConfig) (types.Process, error) {
	r := h.c.rt
	r.mu.Lock()
	if err := r.injected(OpExec); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if spec == nil {
		r.mu.Unlock()
		return nil, errdefs.ErrInvalidArgument.WithMessage("exec " + processID + ": no process spec")
	}
	if err := h.live(); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if h.t.init.status != types.StatusRunning {
		r.mu.Unlock()
		return nil, errdefs.ErrFailedPrecondition.WithMessage("container " + h.t.ctr.id + " is not running")
	}
	if _, ok := h.t.execs[processID]; ok || processID == h.t.ctr.id {
		r.mu.Unlock()
		return nil, errdefs.ErrAlreadyExists.WithMessage("id " + processID + ": already exists")
	}
	r.mu.Unlock()
	p, err := r.newProc(h.c, processID, cfg)
	if err != nil {
		return nil, err
	}
	ps := *spec
	ps.Terminal = cfg.Terminal
	p.spec = &ps
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := h.t.execs[processID]; ok {
		p.closeStdio()
		return nil, errdefs.ErrAlreadyExists.WithMessage("id " + processID + ": already exists")
	}
	h.t.execs[processID] = p
	r.emit(types.EventExecAdded, types.EventInfo{ContainerID: h.t.ctr.id, ProcessID: processID})
	return &process{c: h.c, t: h.t, p: p}, nil
}

func (h *task) LoadProcess(ctx context.Context, processID string, attach types.StdioCallback) (types.Process, error) {
	r := h.c.rt
	r.mu.Lock()
	if err := r.injected(OpLoadProcess); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	if err := h.live(); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	p, ok := h.t.execs[processID]
	if !ok {
		r.mu.Unlock()
		return nil, errdefs.ErrNotFound.WithMessage("process " + processID + " not found")
	}
	var (
		stdio types.Stdio
		flush func()
	)
	reattach := attach != nil && p.stdio
	if reattach {
		stdio, flush = p.reattach(h.c)
	}
	r.mu.Unlock()
	if reattach {
		if err := attach(stdio); err != nil {
			return nil, err
		}
		flush()
	}
	return &process{c: h.c, t: h.t, p: p}, nil
}

func (h *task) Pids(ctx context.Context) ([]types.ProcessInfo, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return nil, err
	}
	var out []types.ProcessInfo
	if h.t.init.status == types.StatusRunning {
		out = append(out, types.ProcessInfo{Pid: h.t.init.pid})
	}
	for id, p := range h.t.execs {
		if p.status == types.StatusRunning {
			out = append(out, types.ProcessInfo{Pid: p.pid, ProcessID: id})
		}
	}
	return out, nil
}

func (h *task) Stats(ctx context.Context) (*types.Stats, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return nil, err
	}
	return &types.Stats{Read: time.Now()}, nil
}

func (h *task) UpdateResources(ctx context.Context, resources *specs.LinuxResources) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	h.t.resources = resources
	return nil
}

func (h *task) CloseStdin(ctx context.Context) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	h.t.init.stdinClosed = true
	return nil
}

func (h *task) Resize(ctx context.Context, width, height uint32) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	h.t.init.width, h.t.init.height = width, height
	return nil
}

func (h *task) Delete(ctx context.Context) (types.ExitStatus, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpTaskDelete); err != nil {
		return types.ExitStatus{}, err
	}
	if err := h.live(); err != nil {
		return types.ExitStatus{}, err
	}
	if st := h.t.init.status; st == types.StatusRunning {
		return types.ExitStatus{}, errdefs.ErrFailedPrecondition.WithMessage("task " + h.t.ctr.id + " must be stopped before deletion: running")
	}
	return r.deleteTask(h.t), nil
}

// deleteTask removes a task that is not running; rt.mu is held.
func (r *Runtime) deleteTask(t *taskState) types.ExitStatus {
	p := t.init
	if p.status == types.StatusCreated {
		// runc kills a created init before deleting it.
		p.status, p.exitCode, p.exitedAt = types.StatusStopped, 128+uint32(syscall.SIGKILL), time.Now()
		p.closeStdio()
	}
	for _, e := range t.execs {
		e.closeStdio()
	}
	t.deleted = true
	t.ctr.task = nil
	r.emit(types.EventTaskDeleted, types.EventInfo{ContainerID: t.ctr.id, ProcessID: t.ctr.id, Pid: p.pid, ExitCode: p.exitCode, ExitedAt: p.exitedAt})
	return types.ExitStatus{ExitCode: p.exitCode, ExitedAt: p.exitedAt}
}

func (h *task) ForceDelete(ctx context.Context) (types.ExitStatus, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpTaskDelete); err != nil {
		return types.ExitStatus{}, err
	}
	if err := h.live(); err != nil {
		return types.ExitStatus{}, err
	}
	if h.t.init.status == types.StatusRunning {
		r.signal(h.t, h.t.init, syscall.SIGKILL)
	}
	return r.deleteTask(h.t), nil
}

type process struct {
	c *client
	t *taskState
	p *procState
}

var _ types.Process = (*process)(nil)

func (h *process) ID() string { return h.p.id }

func (h *process) Pid() uint32 {
	h.c.rt.mu.Lock()
	defer h.c.rt.mu.Unlock()
	if h.p.status == types.StatusCreated {
		return 0
	}
	return h.p.pid
}

// live fails with Unavailable while containerd is down, with NotFound once the process or its task was deleted; rt.mu is held.
func (h *process) live() error {
	if err := h.c.rt.injected(""); err != nil {
		return err
	}
	if h.p.deleted || h.t.deleted {
		return errdefs.ErrNotFound.WithMessage("process " + h.p.id + " not found")
	}
	return nil
}

func (h *process) Start(ctx context.Context) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpProcessStart); err != nil {
		return err
	}
	if err := h.live(); err != nil {
		return err
	}
	if h.p.status != types.StatusCreated {
		return errdefs.ErrFailedPrecondition.WithMessage("process " + h.p.id + " is " + string(h.p.status) + ", not created")
	}
	if h.t.init.status != types.StatusRunning {
		return errdefs.ErrFailedPrecondition.WithMessage("container " + h.t.ctr.id + " is not running")
	}
	h.p.status = types.StatusRunning
	r.emit(types.EventExecStarted, types.EventInfo{ContainerID: h.t.ctr.id, ProcessID: h.p.id, Pid: h.p.pid})
	return nil
}

func (h *process) Kill(ctx context.Context, sig syscall.Signal) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpProcessKill); err != nil {
		return err
	}
	if err := h.live(); err != nil {
		return err
	}
	if h.p.status != types.StatusRunning {
		return errdefs.ErrNotFound.WithMessage("process already finished")
	}
	r.signal(h.t, h.p, sig)
	return nil
}

func (h *process) Status(ctx context.Context) (types.ProcessStatus, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return types.ProcessStatus{}, err
	}
	if h.p.status == types.StatusStopped {
		return types.ProcessStatus{Status: types.StatusStopped, ExitCode: h.p.exitCode, ExitedAt: h.p.exitedAt}, nil
	}
	return types.ProcessStatus{Status: h.p.status}, nil
}

func (h *process) Resize(ctx context.Context, width, height uint32) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	h.p.width, h.p.height = width, height
	return nil
}

func (h *process) CloseStdin(ctx context.Context) error {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	h.p.stdinClosed = true
	return nil
}

func (h *process) Delete(ctx context.Context) (types.ExitStatus, error) {
	r := h.c.rt
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.injected(OpProcessDelete); err != nil {
		return types.ExitStatus{}, err
	}
	if err := h.live(); err != nil {
		return types.ExitStatus{}, err
	}
	p := h.p
	if p.status == types.StatusRunning {
		return types.ExitStatus{}, errdefs.ErrFailedPrecondition.WithMessage("process " + p.id + " must be stopped before deletion: running")
	}
	if p.status == types.StatusCreated {
		p.status, p.exitCode, p.exitedAt = types.StatusStopped, 128+uint32(syscall.SIGKILL), time.Now()
	}
	p.closeStdio()
	p.deleted = true
	delete(h.t.execs, p.id)
	return types.ExitStatus{ExitCode: p.exitCode, ExitedAt: p.exitedAt}, nil
}
