// Package containerd runs managed plugins as containerd tasks through the libcontainerd/types boundary,
// in the namespace the daemon chose for plugins (plugins.berth by default): container ID = plugin ID,
// rootfs = the plugin's host directory (no snapshot), stdio through FIFOs under a per-plugin directory,
// task exits turned into ExitHandler calls after the task and container are deleted.
//
// It imports libcontainerd/types and plugin/executor only: the daemon hands it a client constructor, so
// it never depends on the containerd client library.
package containerd

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/libcontainerd/types"
	"github.com/berthd/berthd/plugin/executor"
)

// NewClientFunc connects to containerd in the plugins namespace with cb receiving its task events
// (the daemon passes a closure over libcontainerd/remote.New).
type NewClientFunc func(ctx context.Context, cb types.EventCallback) (types.Client, error)

// Config configures the executor.
type Config struct {
	// StateDir holds a directory per plugin for its stdio FIFOs (under the exec root).
	StateDir string
	// Runtime and RuntimeOptions select the shim (default io.containerd.runc.v2 with runc defaults).
	Runtime        string
	RuntimeOptions *types.RuntimeOptions
}

// Executor implements executor.Executor on containerd.
type Executor struct {
	cfg     Config
	client  types.Client
	handler executor.ExitHandler

	mu sync.Mutex
	// running maps the plugins this executor started or restored to their task's pid: an exit event of
	// another pid (an old task replaced by Create) is not this task's exit.
	running map[string]uint32
}

var _ executor.Executor = (*Executor)(nil)

// New connects through newClient and reports exits to h.
func New(ctx context.Context, cfg Config, newClient NewClientFunc, h executor.ExitHandler) (*Executor, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	e := &Executor{cfg: cfg, handler: h, running: map[string]uint32{}}
	c, err := newClient(ctx, e.onEvent)
	if err != nil {
		return nil, err
	}
	e.client = c
	return e, nil
}

// Close ends the connection; plugins keep running.
func (e *Executor) Close() error { return e.client.Close() }

func (e *Executor) fifoDir(id string) string { return filepath.Join(e.cfg.StateDir, id) }

func stdioCallback(stdout, stderr io.WriteCloser) types.StdioCallback {
	return func(s types.Stdio) error {
		pump := func(r io.ReadCloser, w io.WriteCloser) {
			if r == nil {
				if w != nil {
					w.Close()
				}
				return
			}
			go func() {
				if w == nil {
					_, _ = io.Copy(io.Discard, r)
				} else {
					_, _ = io.Copy(w, r)
					w.Close()
				}
				r.Close()
			}()
		}
		pump(s.Stdout, stdout)
		pump(s.Stderr, stderr)
		return nil
	}
}

// Create implements executor.Executor: a container left with the same ID is removed first ("replace").
func (e *Executor) Create(ctx context.Context, id string, spec *specs.Spec, stdout, stderr io.WriteCloser) error {
	// A task being replaced is forgotten first: its exit is not the new task's.
	e.setRunning(id, 0)
	if err := e.remove(ctx, id); err != nil {
		return err
	}
	ctr, err := e.client.NewContainer(ctx, id, types.ContainerConfig{
		Spec: spec, Runtime: e.cfg.Runtime, RuntimeOptions: e.cfg.RuntimeOptions,
		Labels: map[string]string{"berthd.plugin": "true"},
	})
	if err != nil {
		return err
	}
	dir := e.fifoDir(id)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	t, err := ctr.NewTask(ctx, types.TaskConfig{IOConfig: types.IOConfig{FIFODir: dir, Stdio: stdioCallback(stdout, stderr)}})
	if err != nil {
		_ = ctr.Delete(context.WithoutCancel(ctx))
		return err
	}
	e.setRunning(id, t.Pid())
	if err := t.Start(ctx); err != nil {
		e.setRunning(id, 0)
		dctx := context.WithoutCancel(ctx)
		_, _ = t.ForceDelete(dctx)
		_ = ctr.Delete(dctx)
		return err
	}
	return nil
}

// setRunning records the pid of id's task; 0 forgets it.
func (e *Executor) setRunning(id string, pid uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if pid != 0 {
		e.running[id] = pid
	} else {
		delete(e.running, id)
	}
}

// claimExit reports whether an exit of pid (0: unknown) is the exit of id's current task, and forgets
// the task if so.
func (e *Executor) claimExit(id string, pid uint32) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur, ok := e.running[id]
	if !ok || (pid != 0 && cur != pid) {
		return false
	}
	delete(e.running, id)
	return true
}

// remove force-deletes the task and container of id, if any.
func (e *Executor) remove(ctx context.Context, id string) error {
	ctr, err := e.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if t, err := ctr.Task(ctx, nil); err == nil {
		if _, err := t.ForceDelete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return errors.Wrapf(err, "remove old task of plugin %s", id)
		}
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if err := ctr.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return errors.Wrapf(err, "remove old container of plugin %s", id)
	}
	return nil
}

// Restore implements executor.Executor.
func (e *Executor) Restore(ctx context.Context, id string, stdout, stderr io.WriteCloser) (bool, error) {
	ctr, err := e.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	t, err := ctr.Task(ctx, stdioCallback(stdout, stderr))
	if err == nil {
		st, serr := t.Status(ctx)
		if serr == nil && st.Status == types.StatusRunning {
			e.setRunning(id, t.Pid())
			return true, nil
		}
	}
	return false, e.remove(ctx, id)
}

func (e *Executor) task(ctx context.Context, id string) (types.Task, error) {
	ctr, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return ctr.Task(ctx, nil)
}

// IsRunning implements executor.Executor.
func (e *Executor) IsRunning(ctx context.Context, id string) (bool, error) {
	t, err := e.task(ctx, id)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st, err := t.Status(ctx)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return st.Status == types.StatusRunning || st.Status == types.StatusCreated, nil
}

// Signal implements executor.Executor.
func (e *Executor) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	t, err := e.task(ctx, id)
	if err != nil {
		return err
	}
	return t.Kill(ctx, sig, true)
}

// Pid implements executor.Executor.
func (e *Executor) Pid(ctx context.Context, id string) (uint32, error) {
	t, err := e.task(ctx, id)
	if err != nil {
		return 0, err
	}
	return t.Pid(), nil
}

// onEvent turns an init-process exit into task and container removal and an ExitHandler call; after a
// lost event stream it checks every plugin it runs.
func (e *Executor) onEvent(ctx context.Context, typ types.EventType, info types.EventInfo) {
	switch typ {
	case types.EventExit:
		if info.ProcessID != "" && info.ProcessID != info.ContainerID {
			return
		}
		e.exited(ctx, info.ContainerID, info.Pid)
	case types.EventResync:
		e.mu.Lock()
		ids := make([]string, 0, len(e.running))
		for id := range e.running {
			ids = append(ids, id)
		}
		e.mu.Unlock()
		for _, id := range ids {
			if ok, err := e.IsRunning(ctx, id); err == nil && !ok {
				e.exited(ctx, id, 0)
			}
		}
	}
}

func (e *Executor) exited(ctx context.Context, id string, pid uint32) {
	if !e.claimExit(id, pid) {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.remove(dctx, id); err != nil {
		log.G(ctx).WithError(err).WithField("plugin", id).Warn("cleaning up the exited plugin task")
	}
	os.RemoveAll(e.fifoDir(id))
	if e.handler != nil {
		go func() {
			if err := e.handler.HandleExitEvent(id); err != nil {
				log.G(ctx).WithError(err).WithField("plugin", id).Error("handling plugin exit")
			}
		}()
	}
}
