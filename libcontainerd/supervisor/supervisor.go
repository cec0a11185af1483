// Package supervisor owns the containerd child that berthd runs when no --containerd address is given:
// it writes the config, starts containerd in its own process group, waits for it to serve, and restarts it
// with backoff when it dies or stops answering health checks.
//
// It imports the stdlib, containerd/log and the gRPC health client only; it must not import the containerd
// client (libcontainerd/remote owns that) nor anything of berthd above libcontainerd.
//
// containerd is deliberately not tied to berthd's life (no Pdeathsig): containers must survive a daemon
// crash for live-restore, and a restarted berthd adopts the containerd its pidfile names when that process
// runs with the same config.
package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"github.com/moby/sys/atomicwriter"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	startTimeout    = 15 * time.Second
	stopTimeout     = 15 * time.Second
	healthTimeout   = 3 * time.Second
	healthInterval  = time.Second
	healthFailures  = 3
	backoffMin      = 100 * time.Millisecond
	backoffMax      = 5 * time.Second
	backoffResetAge = 10 * time.Second
)

// Config says where and how to run containerd.
type Config struct {
	// RootDir is containerd's persistent root (dockerd: <data-root>/containerd/daemon).
	RootDir string
	// StateDir holds the generated config, pidfile, sockets and log (dockerd: <exec-root>/containerd);
	// containerd's own state lives in StateDir/daemon. It must be short: the socket path must fit in 107 bytes.
	StateDir string
	// Binary is the containerd executable; "containerd" (looked up in PATH) when empty.
	Binary string
	// LogLevel is containerd's log level (trace, debug, info, warn, error); info when empty.
	LogLevel string
	// Debug forces LogLevel to debug.
	Debug bool
	// CRI keeps containerd's CRI plugin enabled (dockerd's --cri-containerd); disabled by default.
	CRI bool
	// OOMScore is containerd's oom_score_adj (0 leaves it alone).
	OOMScore int
	// OnRestart, when set, is called from the monitor goroutine after containerd was restarted and serves
	// again, with the new pid. It must not block for long.
	OnRestart func(pid int)
}

// Supervisor runs and watches one containerd. Its methods are safe for concurrent use.
type Supervisor struct {
	cfg        Config
	binary     string
	configPath string
	pidPath    string
	logPath    string
	address    string
	config     []byte

	mu   sync.Mutex
	proc *process

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// process is one containerd instance; exited is closed when it is gone.
type process struct {
	pid     int
	cmd     *exec.Cmd // nil when adopted from a pidfile
	exited  chan struct{}
	started time.Time
}

// Start writes the config, starts (or adopts) containerd, waits until it serves gRPC, and starts the
// monitor. ctx bounds the start only; the monitor runs until Stop.
func Start(ctx context.Context, cfg Config) (*Supervisor, error) {
	if cfg.RootDir == "" || cfg.StateDir == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("containerd supervisor: RootDir and StateDir are required")
	}
	var err error
	if cfg.RootDir, err = filepath.Abs(cfg.RootDir); err != nil {
		return nil, errors.Wrap(err, "containerd root")
	}
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, errors.Wrap(err, "containerd state")
	}
	s := &Supervisor{
		cfg:        cfg,
		configPath: filepath.Join(cfg.StateDir, configFile),
		pidPath:    filepath.Join(cfg.StateDir, pidFile),
		logPath:    filepath.Join(cfg.StateDir, logFile),
		address:    filepath.Join(cfg.StateDir, socketFile),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if len(s.address)+len(".ttrpc") > maxSocketLen {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("containerd socket path too long (%d bytes, max %d): %s", len(s.address)+len(".ttrpc"), maxSocketLen, s.address))
	}
	bin := cfg.Binary
	if bin == "" {
		bin = "containerd"
	}
	if s.binary, err = exec.LookPath(bin); err != nil {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("containerd binary %q: %v", bin, err))
	}
	if err := os.MkdirAll(cfg.RootDir, 0o711); err != nil {
		return nil, errors.Wrap(err, "create containerd root")
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, stateSubdir), 0o711); err != nil {
		return nil, errors.Wrap(err, "create containerd state dir")
	}
	s.config = renderConfig(cfg, cfg.StateDir)

	if p := s.adopt(ctx); p != nil {
		s.proc = p
	} else {
		if err := atomicwriter.WriteFile(s.configPath, s.config, 0o600); err != nil {
			return nil, errors.Wrap(err, "write containerd config")
		}
		p, err := s.spawn(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.waitServing(ctx, p); err != nil {
			s.kill(p)
			return nil, err
		}
		s.proc = p
	}
	go s.monitor(log.WithLogger(context.WithoutCancel(ctx), log.G(ctx).WithField("module", "containerd-supervisor")))
	return s, nil
}

// Address is the gRPC socket path (no unix:// prefix), as the containerd client expects it.
func (s *Supervisor) Address() string { return s.address }

// Pid is the current containerd pid (0 while it is being restarted).
func (s *Supervisor) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	select {
	case <-s.proc.exited:
		return 0
	default:
		return s.proc.pid
	}
}

// Stop ends the monitor and stops containerd: SIGTERM, then SIGKILL after 15 s or when ctx is done.
// Running containers survive (their shims are in their own process groups).
func (s *Supervisor) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		log.G(ctx).WithField("pid", p.pid).Warn("containerd did not stop within 15s; killing it")
		s.kill(p)
	case <-ctx.Done():
		s.kill(p)
	}
	_ = os.Remove(s.pidPath)
	return nil
}

// Detach ends the monitor but leaves containerd running, for a shutdown that keeps containers alive
// (live-restore): the next Start with the same Config adopts that containerd through the pidfile.
func (s *Supervisor) Detach() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// adopt returns the live containerd named by the pidfile when it runs our binary with our config file
// and the config on disk is what we would write; otherwise it stops a stale containerd of ours and
// returns nil.
func (s *Supervisor) adopt(ctx context.Context) *process {
	b, err := os.ReadFile(s.pidPath)
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !alive(pid) {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 3 || !strings.Contains(filepath.Base(args[0]), "containerd") || !hasArg(args, "--config", s.configPath) {
		return nil // the pid was recycled by something else
	}
	logger := log.G(ctx).WithField("pid", pid)
	onDisk, _ := os.ReadFile(s.configPath)
	if !bytes.Equal(onDisk, s.config) {
		logger.Info("containerd from a previous run uses another config; restarting it")
		p := &process{pid: pid, exited: make(chan struct{})}
		go watchForeign(p)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			s.kill(p)
		}
		return nil
	}
	p := &process{pid: pid, exited: make(chan struct{}), started: time.Now()}
	go watchForeign(p)
	if err := s.waitServing(ctx, p); err != nil {
		logger.WithError(err).Warn("containerd from a previous run does not serve; restarting it")
		s.kill(p)
		return nil
	}
	logger.Info("reusing containerd from a previous run")
	return p
}

func hasArg(args []string, flag, value string) bool {
	for i, a := range args {
		if (a == flag || a == "-c") && i+1 < len(args) && args[i+1] == value {
			return true
		}
		if a == flag+"="+value {
			return true
		}
	}
	return false
}

// spawn starts a containerd child with output appended to the log file.
func (s *Supervisor) spawn(ctx context.Context) (*process, error) {
	out, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, errors.Wrap(err, "open containerd log")
	}
	defer out.Close() // the child keeps its own copy
	args := []string{"--config", s.configPath}
	if s.cfg.Debug {
		args = append(args, "--log-level", "debug")
	} else if s.cfg.LogLevel != "" {
		args = append(args, "--log-level", s.cfg.LogLevel)
	}
	cmd := exec.Command(s.binary, args...)
	// containerd writes straight to the file, not through a pipe we own, so a berthd crash cannot
	// break its stderr.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = childEnv()
	// Own process group: a terminal's ^C for berthd must not reach containerd. No Pdeathsig (live-restore).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, errors.Wrap(err, "start containerd")
	}
	p := &process{pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{}), started: time.Now()}
	go func() {
		err := cmd.Wait()
		log.G(ctx).WithField("pid", p.pid).WithError(err).Debug("containerd exited")
		close(p.exited)
	}()
	if err := atomicwriter.WriteFile(s.pidPath, []byte(strconv.Itoa(p.pid)), 0o644); err != nil {
		s.kill(p)
		return nil, errors.Wrap(err, "write containerd pidfile")
	}
	log.G(ctx).WithField("pid", p.pid).WithField("log", s.logPath).Info("started containerd")
	return p, nil
}

// childEnv drops what would make containerd talk to our service manager as if it were berthd.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitServing polls the health service until it answers SERVING, p exits, ctx ends or 15 s pass.
func (s *Supervisor) waitServing(ctx context.Context, p *process) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	// A short fixed poll: until the socket exists a check is one stat, and every millisecond spent here
	// is daemon start-up time.
	const delay = 10 * time.Millisecond
	for {
		if err := s.healthy(ctx); err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("containerd exited during start-up; see %s%s", s.logPath, s.logTail()))
		case <-deadline.C:
			return errdefs.ErrUnavailable.WithMessage("timeout waiting for containerd to start")
		case <-ctx.Done():
			return errors.Wrap(ctx.Err(), "waiting for containerd to start")
		case <-time.After(delay):
		}
	}
}

// logTail returns the last lines of the log for start-up errors.
func (s *Supervisor) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 1024 {
		b = b[len(b)-1024:]
	}
	return ":\n" + strings.TrimSpace(string(b))
}

// healthy performs one gRPC health check on a fresh connection, so that the check never waits on a
// connection stuck in gRPC's reconnect backoff from the previous containerd.
func (s *Supervisor) healthy(ctx context.Context) error {
	if _, err := os.Stat(s.address); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+s.address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	if r.Status != healthpb.HealthCheckResponse_SERVING {
		return errors.Errorf("containerd health: %s", r.Status)
	}
	return nil
}

// monitor restarts containerd when it exits or fails healthFailures checks in a row.
func (s *Supervisor) monitor(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	failures := 0
	backoff := backoffMin
	for {
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-p.exited:
			log.G(ctx).WithField("pid", p.pid).Warn("containerd exited; restarting it")
		case <-tick.C:
			if err := s.healthy(ctx); err != nil {
				failures++
				log.G(ctx).WithError(err).WithField("failures", failures).Warn("containerd health check failed")
				if failures < healthFailures {
					continue
				}
				log.G(ctx).WithField("pid", p.pid).Error("containerd does not answer health checks; killing and restarting it")
				s.kill(p)
			} else {
				failures = 0
				continue
			}
		}
		failures = 0
		if time.Since(p.started) > backoffResetAge {
			backoff = backoffMin
		}
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(backoff):
			}
			if backoff *= 2; backoff > backoffMax {
				backoff = backoffMax
			}
			np, err := s.restart(ctx)
			if err != nil {
				log.G(ctx).WithError(err).Error("restarting containerd failed")
				continue
			}
			if s.cfg.OnRestart != nil {
				s.cfg.OnRestart(np.pid)
			}
			break
		}
	}
}

func (s *Supervisor) restart(ctx context.Context) (*process, error) {
	// The config is rewritten in case someone removed the state dir under us.
	if err := os.MkdirAll(filepath.Join(s.cfg.StateDir, stateSubdir), 0o711); err != nil {
		return nil, err
	}
	if err := atomicwriter.WriteFile(s.configPath, s.config, 0o600); err != nil {
		return nil, err
	}
	p, err := s.spawn(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-wctx.Done():
		}
	}()
	if err := s.waitServing(wctx, p); err != nil {
		s.kill(p)
		return nil, err
	}
	return p, nil
}

// kill SIGKILLs p and waits for it to be gone.
func (s *Supervisor) kill(p *process) {
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
	}
}

// watchForeign closes p.exited once an adopted (non-child) process is gone; we cannot wait(2) for it.
func watchForeign(p *process) {
	for alive(p.pid) {
		time.Sleep(100 * time.Millisecond)
	}
	close(p.exited)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 (state) follows the parenthesised command name, which may itself contain spaces.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}
