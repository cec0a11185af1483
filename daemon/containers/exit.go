package containers

import (
	"context"
	"strconv"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// drainTimeout bounds how long an exit waits for the process' output to reach EOF: a daemonized child
// that keeps the pipes open must not keep the container "running" forever.
const drainTimeout = 2 * time.Second

// ProcessEvent is the libcontainerd event callback.
func (s *lifecycle) ProcessEvent(ctx context.Context, typ ltypes.EventType, info ltypes.EventInfo) {
	switch typ {
	case ltypes.EventExit:
		c := s.byExactID(info.ContainerID)
		if c == nil {
			return
		}
		if info.ProcessID != "" && info.ProcessID != info.ContainerID {
			s.procs.execExited(info.ProcessID, int(info.ExitCode))
			return
		}
		go s.handleExit(context.WithoutCancel(ctx), c, int(info.ExitCode), info.ExitedAt)
	case ltypes.EventOOM:
		if c := s.byExactID(info.ContainerID); c != nil {
			c.State.mu.Lock()
			c.State.OOMKilled = true
			c.State.mu.Unlock()
			s.logEvent(c, "oom", nil)
		}
	case ltypes.EventResync:
		go s.reconcile(context.WithoutCancel(ctx))
	}
}

// reconcile handles exits missed while containerd's event stream was down.
func (s *lifecycle) reconcile(ctx context.Context) {
	for _, c := range s.list() {
		c.mu.Lock()
		t := c.task
		c.mu.Unlock()
		if t == nil {
			continue
		}
		st, err := t.Status(ctx)
		if err == nil && st.Status == ltypes.StatusStopped {
			s.handleExit(ctx, c, int(st.ExitCode), st.ExitedAt)
		} else if errdefs.IsNotFound(err) {
			s.handleExit(ctx, c, 255, time.Now())
		}
	}
}

// handleExit cleans up after the init process exited: drains output, deletes the task and the containerd
// container, unmounts volumes, records the exit, then applies the restart policy or --rm.
func (s *lifecycle) handleExit(ctx context.Context, c *Container, code int, at time.Time) {
	ctx = logCtx(ctx, c)
	c.mu.Lock()
	task := c.task
	if task == nil {
		c.mu.Unlock()
		return
	}
	tr := newStepTrace(ctx, "container exit")
	defer tr.done()
	if done := c.streams.done(); done != nil {
		select {
		case <-done:
		case <-time.After(drainTimeout):
		}
	}
	tr.step("drain")
	// The init process is gone (and, in a PID namespace of its own, every process of the container with
	// it): the endpoints are released while containerd tears the task down, not after.
	released := make(chan struct{})
	go func() {
		defer close(released)
		s.net.releaseNetwork(ctx, c)
	}()
	if quickRemoval(c, s.policy.shouldRestart(c, code)) {
		s.exitAndRemove(ctx, c, task, code, at, released, tr)
		return
	}
	if es, err := task.Delete(ctx); err == nil {
		code, at = int(es.ExitCode), es.ExitedAt
	} else if !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).Warn("delete task")
		if es, err := task.ForceDelete(ctx); err == nil {
			code, at = int(es.ExitCode), es.ExitedAt
		}
	}
	tr.step("task-delete")
	if c.ctr != nil {
		if err := c.ctr.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("delete containerd container")
		}
		c.ctr = nil
	} else {
		s.deleteRuntimeContainer(ctx, c.ID)
	}
	c.runtimeDeleted = true
	tr.step("ctr-delete")
	c.task = nil
	c.stopHealth()
	s.procs.failExecs(c)
	s.spec.unmountVolumes(ctx, c)
	<-released
	tr.step("release")
	if c.logw != nil {
		c.logw.Close()
		c.logw = nil
	}
	started := c.State.snapshot().StartedAt
	restart := s.policy.shouldRestart(c, code)
	if restart {
		c.State.SetRestarting(code, at)
	} else {
		c.State.SetStopped(code, at)
	}
	autoRemove := c.HostConfig.AutoRemove && !restart && !c.restartingByUser
	// A --rm container's record is removed next; saving its stopped state first would only cost a sync
	// (after a crash in between, restore finds it not running and removes it all the same).
	if !autoRemove {
		if err := c.save(); err != nil {
			log.G(ctx).WithError(err).Warn("save container state")
		}
		tr.step("save")
	}
	s.logEvent(c, "die", map[string]string{"exitCode": strconv.Itoa(code)})
	if c.exited != nil {
		close(c.exited)
		c.exited = nil
	}
	if restart {
		s.policy.scheduleRestart(ctx, c, time.Since(started))
	}
	c.mu.Unlock()
	if autoRemove {
		if err := s.remove(ctx, c, true, true); err != nil {
			log.G(ctx).WithError(err).Warn("auto-remove container")
			c.mu.Lock()
			if err := c.save(); err != nil {
				log.G(ctx).WithError(err).Warn("save container state")
			}
			c.mu.Unlock()
		}
		tr.step("remove")
	}
}

// shouldRestart applies the restart policy to an exit; c.mu is held.
func (s *restorer) shouldRestart(c *Container, code int) bool {
	s.downMu.Lock()
	down := s.shuttingDown
	s.downMu.Unlock()
	if down || c.HasBeenManuallyStopped {
		return false
	}
	rp := c.HostConfig.RestartPolicy
	switch rp.Name {
	case ctypes.RestartPolicyAlways, ctypes.RestartPolicyUnlessStopped:
		return true
	case ctypes.RestartPolicyOnFailure:
		return code != 0 && (rp.MaximumRetryCount == 0 || c.RestartCount < rp.MaximumRetryCount)
	}
	return false
}

const (
	minRestartDelay = 100 * time.Millisecond
	maxRestartDelay = time.Minute
	// resetAfter: a run this long resets the back-off, as dockerd's restart manager.
	resetAfter = 10 * time.Second
)

// scheduleRestart restarts c after a doubling delay; c.mu is held.
func (s *restorer) scheduleRestart(ctx context.Context, c *Container, ran time.Duration) {
	if ran >= resetAfter {
		c.restartDelay = 0
	}
	if c.restartDelay == 0 {
		c.restartDelay = minRestartDelay
		if s.cfg.firstRestartDelay > 0 {
			c.restartDelay = s.cfg.firstRestartDelay
		}
	} else {
		c.restartDelay *= 2
		if c.restartDelay > maxRestartDelay {
			c.restartDelay = maxRestartDelay
		}
	}
	timer := time.AfterFunc(c.restartDelay, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.State.IsRestarting() || c.HasBeenManuallyStopped {
			return
		}
		c.restartCancel = nil
		c.RestartCount++
		if err := s.life.startLocked(ctx, c); err != nil {
			log.G(ctx).WithError(err).Warn("restart container")
			s.logEvent(c, "die", map[string]string{"exitCode": "128"})
		}
	})
	c.restartCancel = func() { timer.Stop() }
}
