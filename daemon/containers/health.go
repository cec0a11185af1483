package containers

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/containerd/log"
)

// Healthcheck defaults, as dockerd's.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5
	maxProbeOutput       = 4096
)

// Health statuses.
const (
	healthStarting  = "starting"
	healthHealthy   = "healthy"
	healthUnhealthy = "unhealthy"
)

// healthState is the live health of a running container (not persisted: a new run starts over).
type healthState struct {
	mu     sync.Mutex
	status string
	streak int
	log    []*ctypes.HealthcheckResult
	stop   chan struct{}
}

func (h *healthState) snapshot() *ctypes.Health {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return &ctypes.Health{Status: h.status, FailingStreak: h.streak, Log: append([]*ctypes.HealthcheckResult{}, h.log...)}
}

func (h *healthState) statusString() string {
	if h == nil {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status
}

// healthCmd turns the healthcheck's Test into the probe's command; nil when there is none.
func healthCmd(hc *ctypes.HealthConfig, shell []string) []string {
	if hc == nil || len(hc.Test) == 0 {
		return nil
	}
	switch hc.Test[0] {
	case "NONE":
		return nil
	case "CMD":
		return hc.Test[1:]
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string(nil), shell...), strings.Join(hc.Test[1:], " "))
	}
	return nil
}

func orDefault(ns int64, d time.Duration) time.Duration {
	if ns > 0 {
		return time.Duration(ns)
	}
	return d
}

// startHealth starts the probe loop of a new run; c.mu is held.
func (s *streamer) startHealth(c *Container) {
	cmd := healthCmd(c.Config.Healthcheck, c.Config.Shell)
	if cmd == nil {
		c.health = nil
		return
	}
	h := &healthState{status: healthStarting, stop: make(chan struct{})}
	c.health = h
	hc := c.Config.Healthcheck
	interval := orDefault(hc.Interval, defaultProbeInterval)
	timeout := orDefault(hc.Timeout, defaultProbeTimeout)
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	startPeriod := time.Duration(hc.StartPeriod)
	started := time.Now()
	go func() {
		for {
			wait := interval
			if hc.StartInterval > 0 && time.Since(started) < startPeriod {
				wait = time.Duration(hc.StartInterval)
			}
			select {
			case <-h.stop:
				return
			case <-time.After(wait):
			}
			res := s.probe(c, cmd, timeout)
			select {
			case <-h.stop:
				return
			default:
			}
			h.mu.Lock()
			old := h.status
			if res.ExitCode == 0 {
				h.status, h.streak = healthHealthy, 0
			} else if time.Since(started) >= startPeriod || h.status != healthStarting {
				h.streak++
				if h.streak >= retries {
					h.status = healthUnhealthy
				}
			}
			h.log = append(h.log, res)
			if len(h.log) > maxHealthLog {
				h.log = h.log[len(h.log)-maxHealthLog:]
			}
			status := h.status
			h.mu.Unlock()
			if status != old {
				s.logEvent(c, "health_status: "+status, nil)
			}
		}
	}()
}

// stopHealth ends the probe loop; c.mu is held.
func (c *Container) stopHealth() {
	if c.health != nil {
		select {
		case <-c.health.stop:
		default:
			close(c.health.stop)
		}
	}
}

type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxProbeOutput - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

// probe runs one healthcheck command as an exec and reports its result; a probe over its timeout is
// killed and counts as a failure.
func (s *streamer) probe(c *Container, cmd []string, timeout time.Duration) *ctypes.HealthcheckResult {
	ctx := context.Background()
	res := &ctypes.HealthcheckResult{Start: time.Now().UTC().Format(time.RFC3339Nano), ExitCode: -1}
	defer func() { res.End = time.Now().UTC().Format(time.RFC3339Nano) }()
	id := "health-" + newID()[:16]
	c.mu.Lock()
	running := c.task != nil
	c.mu.Unlock()
	if !running {
		res.Output = "container is not running"
		return res
	}
	e := &execConfig{id: id, container: c, opts: ctypes.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true},
		exited: make(chan struct{}), drained: make(chan struct{})}
	s.execMu.Lock()
	s.execs[id] = e
	s.execMu.Unlock()
	defer func() {
		s.execMu.Lock()
		delete(s.execs, id)
		s.execMu.Unlock()
	}()
	var out limitedBuffer
	done := make(chan error, 1)
	go func() {
		done <- s.ExecStart(ctx, id, &AttachConfig{Stdout: &out, Stderr: &out}, nil)
	}()
	select {
	case err := <-done:
		if err != nil {
			res.Output = err.Error()
			return res
		}
	case <-time.After(timeout):
		e.mu.Lock()
		p := e.process
		e.mu.Unlock()
		if p != nil {
			_ = p.Kill(ctx, syscall.SIGKILL)
		}
		res.Output = "Health check exceeded timeout (" + timeout.String() + ")"
		log.G(ctx).WithField("container", c.ID).Debug("health probe timed out")
		return res
	}
	e.mu.Lock()
	if e.exitCode != nil {
		res.ExitCode = *e.exitCode
	}
	e.mu.Unlock()
	res.Output = out.buf.String()
	if res.ExitCode != 0 && res.ExitCode != 1 {
		res.Output += " (exit " + strconv.Itoa(res.ExitCode) + ")"
	}
	return res
}
