package containers

import (
	"context"
	"io"
	"strings"
	"sync"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execConfig is one `docker exec` process.
type execConfig struct {
	mu        sync.Mutex
	id        string
	container *Container
	opts      ctypes.ExecOptions
	running   bool
	started   bool
	exitCode  *int
	pid       int
	process   ltypes.Process
	// exited is closed when the exit event arrived; drained when the output reached EOF.
	exited  chan struct{}
	drained chan struct{}
	stdin   io.WriteCloser
}

func noSuchExec(id string) error {
	return errdefs.ErrNotFound.WithMessage("No such exec instance: " + id)
}

// ExecCreate registers an exec (POST /containers/{id}/exec).
func (s *streamer) ExecCreate(ctx context.Context, ref string, opts ctypes.ExecOptions) (string, error) {
	c, err := s.get(ref)
	if err != nil {
		return "", err
	}
	if len(opts.Cmd) == 0 {
		return "", invalidf("No exec command specified")
	}
	if _, err := parseDetachKeys(opts.DetachKeys); err != nil {
		return "", invalidf("Invalid escape keys (%s) provided", opts.DetachKeys)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.task == nil || !c.State.IsRunning() {
		return "", errNotRunning(c.ID)
	}
	if c.State.IsPaused() {
		return "", errdefs.ErrConflict.WithMessage("Container " + c.ID + " is paused, unpause the container before exec")
	}
	if c.State.IsRestarting() {
		return "", errdefs.ErrConflict.WithMessage("Container " + c.ID + " is restarting, wait until the container is running")
	}
	id := newID()
	e := &execConfig{id: id, container: c, opts: opts, exited: make(chan struct{}), drained: make(chan struct{})}
	s.execMu.Lock()
	s.execs[id] = e
	s.execMu.Unlock()
	c.execs[id] = e
	s.logEvent(c, "exec_create: "+strings.Join(opts.Cmd, " "), map[string]string{"execID": id})
	return id, nil
}

func (s *streamer) getExec(id string) (*execConfig, error) {
	s.execMu.RLock()
	defer s.execMu.RUnlock()
	e, ok := s.execs[id]
	if !ok {
		return nil, noSuchExec(id)
	}
	return e, nil
}

// ExecStart starts an exec and, unless detached, copies its stdio to a until it exits. attach may be nil
// (detached).
func (s *streamer) ExecStart(ctx context.Context, id string, attach *AttachConfig, consoleSize *[2]uint) (retErr error) {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errdefs.ErrConflict.WithMessage("Error: Exec command " + id + " has already run")
	}
	e.started = true
	e.mu.Unlock()
	// As dockerd: an exec that could not be started has exit code 126, whatever the reason.
	defer func() {
		if retErr != nil {
			code := 126
			e.mu.Lock()
			if e.exitCode == nil {
				e.exitCode = &code
			}
			e.mu.Unlock()
		}
	}()
	c := e.container
	c.mu.Lock()
	task := c.task
	c.mu.Unlock()
	if task == nil {
		return errNotRunning(c.ID)
	}
	proc, err := s.execProcessSpec(ctx, c, e.opts)
	if err != nil {
		return err
	}
	consoleSize = execConsoleSize(proc, e.opts, consoleSize)
	useStdin := attach != nil && attach.Stdin != nil && e.opts.AttachStdin
	var stdout, stderr io.Writer
	if attach != nil {
		if e.opts.AttachStdout {
			stdout = attach.Stdout
		}
		if e.opts.AttachStderr {
			stderr = attach.Stderr
		}
	}
	closeIO, setProc := stdinCloser()
	p, err := task.Exec(ctx, id, proc, ltypes.IOConfig{
		FIFODir: s.cfg.fifoDir(c.ID), Terminal: e.opts.Tty, Stdin: useStdin,
		Stdio: func(stdio ltypes.Stdio) error {
			var wg sync.WaitGroup
			cp := func(w io.Writer, r io.ReadCloser) {
				defer wg.Done()
				if w == nil {
					w = io.Discard
				}
				io.Copy(w, r)
				r.Close()
			}
			if stdio.Stdout != nil {
				wg.Add(1)
				go cp(stdout, stdio.Stdout)
			}
			if stdio.Stderr != nil {
				wg.Add(1)
				go cp(stderr, stdio.Stderr)
			}
			if stdio.Stdin != nil {
				go func() {
					if useStdin {
						io.Copy(stdio.Stdin, attach.Stdin)
					}
					stdio.Stdin.Close()
					closeIO()
				}()
			}
			go func() {
				wg.Wait()
				close(e.drained)
			}()
			return nil
		},
	})
	if err != nil {
		return err
	}
	setProc(p)
	if err := p.Start(ctx); err != nil {
		// The runtime's own refusal (missing or non-executable command) is a ProcessStartError of class
		// InvalidArgument with runc's message; anything else keeps the class it was born with.
		code := 126
		e.mu.Lock()
		e.exitCode = &code
		e.mu.Unlock()
		_, _ = p.Delete(context.WithoutCancel(ctx))
		return err
	}
	e.mu.Lock()
	e.process, e.running, e.pid = p, true, int(p.Pid())
	e.mu.Unlock()
	if e.opts.Tty && consoleSize != nil && consoleSize[0] > 0 {
		_ = p.Resize(ctx, uint32(consoleSize[1]), uint32(consoleSize[0]))
	}
	s.logEvent(c, "exec_start: "+strings.Join(e.opts.Cmd, " "), map[string]string{"execID": id})
	if attach == nil {
		go s.reapExec(context.WithoutCancel(ctx), e)
		return nil
	}
	s.reapExec(ctx, e)
	return nil
}

// reapExec waits for the exit and the output, then deletes the process.
func (s *streamer) reapExec(ctx context.Context, e *execConfig) {
	<-e.exited
	<-e.drained
	e.mu.Lock()
	p := e.process
	e.mu.Unlock()
	if p != nil {
		if es, err := p.Delete(context.WithoutCancel(ctx)); err == nil {
			code := int(es.ExitCode)
			e.mu.Lock()
			if e.exitCode == nil {
				e.exitCode = &code
			}
			e.mu.Unlock()
		}
	}
	e.mu.Lock()
	e.running = false
	code := -1
	if e.exitCode != nil {
		code = *e.exitCode
	}
	e.mu.Unlock()
	s.logEvent(e.container, "exec_die", map[string]string{"execID": e.id, "exitCode": itoa(code)})
}

func (s *streamer) execExited(id string, code int) {
	s.execMu.RLock()
	e := s.execs[id]
	s.execMu.RUnlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.exitCode == nil {
		e.exitCode = &code
	}
	select {
	case <-e.exited:
	default:
		close(e.exited)
	}
}

// forgetExecs drops the exec instances of a removed container.
func (s *streamer) forgetExecs(c *Container) {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	for id, e := range s.execs {
		if e.container == c {
			delete(s.execs, id)
		}
	}
}

// failExecs marks the execs of a stopped container as exited; c.mu is held.
func (s *streamer) failExecs(c *Container) {
	for id, e := range c.execs {
		e.mu.Lock()
		started := e.started
		e.mu.Unlock()
		if started {
			s.execExited(id, 137)
		}
		delete(c.execs, id)
	}
}

func (s *streamer) execProcessSpec(ctx context.Context, c *Container, opts ctypes.ExecOptions) (*specs.Process, error) {
	user := opts.User
	if user == "" {
		user = c.Config.User
	}
	u, err := s.users.resolveUser(ctx, c, user, c.HostConfig.GroupAdd)
	if err != nil {
		return nil, err
	}
	u = withPrimaryGroup(u)
	caps, err := oci.Capabilities(c.HostConfig.Privileged || opts.Privileged, c.HostConfig.CapAdd, c.HostConfig.CapDrop, s.lastCap, s.bounding)
	if err != nil {
		return nil, err
	}
	cwd := opts.WorkingDir
	if cwd == "" {
		cwd = c.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	sec, err := securityFor(s.cfg.Security, c.HostConfig)
	if err != nil {
		return nil, err
	}
	env := processEnv(c.Config)
	env = replaceOrAppendEnv(env, opts.Env)
	if opts.Tty {
		env = replaceOrAppendEnv(env, []string{"TERM=xterm"})
	}
	return &specs.Process{
		Terminal: opts.Tty, Args: opts.Cmd, Env: env, Cwd: cwd,
		User:         specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids},
		Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		// An exec'd process must not gain what the container's own process cannot.
		NoNewPrivileges: sec.NoNewPrivileges, ApparmorProfile: sec.AppArmor,
	}, nil
}

// ExecInspect is GET /exec/{id}/json.
func (s *streamer) ExecInspect(ctx context.Context, id string) (*ctypes.ExecInspect, error) {
	e, err := s.getExec(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	priv := e.opts.Privileged
	out := &ctypes.ExecInspect{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, OpenStdin: e.opts.AttachStdin,
		OpenStdout: e.opts.AttachStdout, OpenStderr: e.opts.AttachStderr, CanRemove: false,
		ContainerID: e.container.ID, DetachKeys: e.opts.DetachKeys, Pid: e.pid,
		ProcessConfig: ctypes.ExecProcessConfig{Tty: e.opts.Tty, Entrypoint: e.opts.Cmd[0], Arguments: e.opts.Cmd[1:], Privileged: &priv, User: e.opts.User},
	}
	if out.ProcessConfig.Arguments == nil {
		out.ProcessConfig.Arguments = []string{}
	}
	return out, nil
}

// ExecResize resizes an exec's TTY.
func (s *streamer) ExecResize(ctx context.Context, id string, height, width int) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	p := e.process
	e.mu.Unlock()
	if p == nil {
		return errdefs.ErrConflict.WithMessage("Exec " + id + " is not running")
	}
	if err := p.Resize(ctx, uint32(width), uint32(height)); err != nil {
		log.G(ctx).WithError(err).Debug("exec resize")
		return err
	}
	return nil
}
