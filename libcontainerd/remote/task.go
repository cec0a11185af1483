package remote

import (
	"context"
	"syscall"

	v1stats "github.com/containerd/cgroups/stats/v1"
	v2stats "github.com/containerd/cgroups/v2/stats"
	containerd "github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/protobuf"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/libcontainerd/types"
)

// The cgroup metrics types must be registered for typeurl to decode a task's metrics; naming them
// here keeps the imports honest.
var (
	_ *v1stats.Metrics
	_ *v2stats.Metrics
)

type task struct {
	c *client
	t containerd.Task
}

var _ types.Task = (*task)(nil)

func (t *task) ID() string                              { return t.t.ID() }
func (t *task) Pid() uint32                             { return t.t.Pid() }
func (t *task) ctx(ctx context.Context) context.Context { return t.c.nsCtx(ctx) }

func (t *task) Start(ctx context.Context) error {
	if err := t.t.Start(t.ctx(ctx)); err != nil {
		if serr := startError(err); errors.As(serr, new(*types.ProcessStartError)) {
			return serr
		}
		return errors.Wrapf(classify(err), "start task %s", t.ID())
	}
	return nil
}

func (t *task) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	var opts []containerd.KillOpts
	if all {
		opts = append(opts, containerd.WithKillAll)
	}
	if err := t.t.Kill(t.ctx(ctx), sig, opts...); err != nil {
		return errors.Wrapf(classify(err), "signal task %s", t.ID())
	}
	return nil
}

func (t *task) Status(ctx context.Context) (types.ProcessStatus, error) {
	s, err := t.t.Status(t.ctx(ctx))
	if err != nil {
		return types.ProcessStatus{}, errors.Wrapf(classify(err), "status of task %s", t.ID())
	}
	return convertStatus(s), nil
}

func (t *task) Pause(ctx context.Context) error {
	if err := t.t.Pause(t.ctx(ctx)); err != nil {
		return errors.Wrapf(classify(err), "pause task %s", t.ID())
	}
	return nil
}

func (t *task) Resume(ctx context.Context) error {
	if err := t.t.Resume(t.ctx(ctx)); err != nil {
		return errors.Wrapf(classify(err), "resume task %s", t.ID())
	}
	return nil
}

func (t *task) Exec(ctx context.Context, processID string, spec *specs.Process, cfg types.IOConfig) (types.Process, error) {
	if spec == nil {
		return nil, invalidArg("exec " + processID + ": no process spec")
	}
	ps := *spec
	ps.Terminal = cfg.Terminal
	ctx = t.ctx(ctx)
	p, err := t.t.Exec(ctx, processID, &ps, newIOCreator(ctx, cfg))
	if err != nil {
		return nil, errors.Wrapf(classify(err), "exec %s in task %s", processID, t.ID())
	}
	return &process{c: t.c, p: p, taskID: t.ID()}, nil
}

func (t *task) LoadProcess(ctx context.Context, processID string, attach types.StdioCallback) (types.Process, error) {
	ctx = t.ctx(ctx)
	// containerd's handle does not carry the pid of a loaded process; ask for it.
	r, err := t.c.ctd.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerID: t.ID(), ExecID: processID})
	if err != nil {
		return nil, errors.Wrapf(classify(err), "load process %s of task %s", processID, t.ID())
	}
	ioAttach := newIOAttach(ctx, attach)
	if attach == nil {
		ioAttach = nil
	}
	p, err := t.t.LoadProcess(ctx, processID, ioAttach)
	if err != nil {
		return nil, errors.Wrapf(classify(err), "load process %s of task %s", processID, t.ID())
	}
	return &process{c: t.c, p: p, taskID: t.ID(), pid: r.Process.Pid}, nil
}

func (t *task) Pids(ctx context.Context) ([]types.ProcessInfo, error) {
	list, err := t.t.Pids(t.ctx(ctx))
	if err != nil {
		return nil, errors.Wrapf(classify(err), "list processes of task %s", t.ID())
	}
	out := make([]types.ProcessInfo, 0, len(list))
	for _, p := range list {
		pi := types.ProcessInfo{Pid: p.Pid}
		if p.Info != nil && p.Info.GetTypeUrl() != "" {
			if v, err := typeurl.UnmarshalAny(p.Info); err == nil {
				if d, ok := v.(*runcoptions.ProcessDetails); ok {
					pi.ProcessID = d.ExecID
				}
			}
		}
		out = append(out, pi)
	}
	return out, nil
}

func (t *task) Stats(ctx context.Context) (*types.Stats, error) {
	m, err := t.t.Metrics(t.ctx(ctx))
	if err != nil {
		return nil, errors.Wrapf(classify(err), "stats of task %s", t.ID())
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return nil, errors.Wrapf(err, "decode stats of task %s", t.ID())
	}
	return &types.Stats{Read: protobuf.FromTimestamp(m.Timestamp), Metrics: v}, nil
}

func (t *task) UpdateResources(ctx context.Context, resources *specs.LinuxResources) error {
	if err := t.t.Update(t.ctx(ctx), containerd.WithResources(resources)); err != nil {
		return errors.Wrapf(classify(err), "update resources of task %s", t.ID())
	}
	return nil
}

func (t *task) CloseStdin(ctx context.Context) error {
	if err := t.t.CloseIO(t.ctx(ctx), containerd.WithStdinCloser); err != nil {
		return errors.Wrapf(classify(err), "close stdin of task %s", t.ID())
	}
	return nil
}

func (t *task) Resize(ctx context.Context, width, height uint32) error {
	if err := t.t.Resize(t.ctx(ctx), width, height); err != nil {
		return errors.Wrapf(classify(err), "resize task %s", t.ID())
	}
	return nil
}

func (t *task) Delete(ctx context.Context) (types.ExitStatus, error) {
	return t.delete(ctx)
}

func (t *task) ForceDelete(ctx context.Context) (types.ExitStatus, error) {
	return t.delete(ctx, containerd.WithProcessKill)
}

func (t *task) delete(ctx context.Context, opts ...containerd.ProcessDeleteOpts) (types.ExitStatus, error) {
	st, err := t.t.Delete(t.ctx(ctx), opts...)
	if err != nil {
		return types.ExitStatus{}, errors.Wrapf(classify(err), "delete task %s", t.ID())
	}
	return types.ExitStatus{ExitCode: st.ExitCode(), ExitedAt: st.ExitTime()}, nil
}

type process struct {
	c      *client
	p      containerd.Process
	taskID string
	pid    uint32 // for loaded processes, whose containerd handle has none
}

var _ types.Process = (*process)(nil)

func (p *process) ID() string { return p.p.ID() }

func (p *process) Pid() uint32 {
	if pid := p.p.Pid(); pid != 0 {
		return pid
	}
	return p.pid
}

func (p *process) ctx(ctx context.Context) context.Context { return p.c.nsCtx(ctx) }

func (p *process) Start(ctx context.Context) error {
	if err := p.p.Start(p.ctx(ctx)); err != nil {
		if serr := startError(err); errors.As(serr, new(*types.ProcessStartError)) {
			return serr
		}
		return errors.Wrapf(classify(err), "start exec %s in task %s", p.ID(), p.taskID)
	}
	return nil
}

func (p *process) Kill(ctx context.Context, sig syscall.Signal) error {
	if err := p.p.Kill(p.ctx(ctx), sig); err != nil {
		return errors.Wrapf(classify(err), "signal exec %s in task %s", p.ID(), p.taskID)
	}
	return nil
}

func (p *process) Status(ctx context.Context) (types.ProcessStatus, error) {
	s, err := p.p.Status(p.ctx(ctx))
	if err != nil {
		return types.ProcessStatus{}, errors.Wrapf(classify(err), "status of exec %s in task %s", p.ID(), p.taskID)
	}
	return convertStatus(s), nil
}

func (p *process) Resize(ctx context.Context, width, height uint32) error {
	if err := p.p.Resize(p.ctx(ctx), width, height); err != nil {
		return errors.Wrapf(classify(err), "resize exec %s in task %s", p.ID(), p.taskID)
	}
	return nil
}

func (p *process) CloseStdin(ctx context.Context) error {
	if err := p.p.CloseIO(p.ctx(ctx), containerd.WithStdinCloser); err != nil {
		return errors.Wrapf(classify(err), "close stdin of exec %s in task %s", p.ID(), p.taskID)
	}
	return nil
}

func (p *process) Delete(ctx context.Context) (types.ExitStatus, error) {
	st, err := p.p.Delete(p.ctx(ctx))
	if err != nil {
		return types.ExitStatus{}, errors.Wrapf(classify(err), "delete exec %s in task %s", p.ID(), p.taskID)
	}
	return types.ExitStatus{ExitCode: st.ExitCode(), ExitedAt: st.ExitTime()}, nil
}

func convertStatus(s containerd.Status) types.ProcessStatus {
	ps := types.ProcessStatus{Status: types.Status(s.Status)}
	if ps.Status == "" {
		ps.Status = types.StatusUnknown
	}
	if ps.Status == types.StatusStopped {
		ps.ExitCode, ps.ExitedAt = s.ExitStatus, s.ExitTime
	}
	return ps
}
