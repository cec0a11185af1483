package containers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

func (s *lifecycle) stopTimeout(c *Container, override *int) time.Duration {
	if override != nil {
		if *override < 0 {
			return -1
		}
		return time.Duration(*override) * time.Second
	}
	if c.Config.StopTimeout != nil {
		if *c.Config.StopTimeout < 0 {
			return -1
		}
		return time.Duration(*c.Config.StopTimeout) * time.Second
	}
	return s.cfg.DefaultStopTimeout
}

func (c *Container) stopSignal() syscall.Signal {
	if c.Config.StopSignal != "" {
		if sig, err := signalFromString(c.Config.StopSignal); err == nil {
			return sig
		}
	}
	return syscall.SIGTERM
}

// Stop stops a container (POST /containers/{id}/stop): its stop signal, then SIGKILL after the timeout.
// NotModified when it is not running. A stopped-by-user container is not restarted by its policy.
func (s *lifecycle) Stop(ctx context.Context, ref string, timeout *int, signal string) error {
	// A stop, once asked, finishes even if the client hangs up: an abandoned stop would leave a
	// container that ignores its stop signal running, marked as stopped by the user.
	ctx = context.WithoutCancel(ctx)
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	sig := c.stopSignal()
	if signal != "" {
		if sig, err = signalFromString(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if !c.State.IsRunning() {
		if c.State.IsRestarting() {
			c.HasBeenManuallyStopped = true
			if c.restartCancel != nil {
				c.restartCancel()
				c.restartCancel = nil
			}
			st := c.State.snapshot()
			c.State.SetStopped(st.ExitCode, st.FinishedAt)
			_ = c.save()
			c.mu.Unlock()
			s.logEvent(c, "stop", nil)
			return nil
		}
		c.mu.Unlock()
		return errdefs.ErrNotModified.WithMessage("container already stopped")
	}
	c.HasBeenManuallyStopped = true
	_ = c.save()
	c.mu.Unlock()
	if err := s.stop(ctx, c, sig, s.stopTimeout(c, timeout)); err != nil {
		return err
	}
	s.logEvent(c, "stop", nil)
	return nil
}

// stop signals and waits; c.mu is not held (the exit handler needs it).
func (s *lifecycle) stop(ctx context.Context, c *Container, sig syscall.Signal, timeout time.Duration) error {
	c.mu.Lock()
	task, exited := c.task, c.exited
	paused := c.State.IsPaused()
	c.mu.Unlock()
	if task == nil || exited == nil {
		return nil
	}
	signalled := false
	if err := task.Kill(ctx, sig, false); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("container", c.ID).Warn("stop signal failed; killing")
		timeout = 0
	} else {
		signalled = true
		s.logEvent(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	}
	if paused {
		_ = task.Resume(ctx)
	}
	if timeout != 0 {
		var tc <-chan time.Time
		if timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			tc = t.C
		}
		select {
		case <-exited:
			return nil
		case <-tc:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	if !signalled || sig != syscall.SIGKILL {
		// rm -f sends SIGKILL twice (to init, then to all) but dockerd reports one kill.
		s.logEvent(c, "kill", map[string]string{"signal": "9"})
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill signals a running container (POST /containers/{id}/kill); signal "" is SIGKILL.
func (s *lifecycle) Kill(ctx context.Context, ref, signal string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = signalFromString(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	task, exited := c.task, c.exited
	if task == nil || !c.State.IsRunning() {
		c.mu.Unlock()
		return errNotRunning(c.ID)
	}
	if sig == c.stopSignal() {
		// dockerd's ExitOnNext: the stop signal sent by hand means "stay down".
		c.HasBeenManuallyStopped = true
	}
	c.mu.Unlock()
	if err := task.Kill(ctx, sig, false); err != nil {
		if errdefs.IsNotFound(err) {
			return errNotRunning(c.ID)
		}
		return err
	}
	s.logEvent(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	if sig == syscall.SIGKILL && exited != nil {
		// As dockerd: a SIGKILL returns once the container has exited (bounded, as dockerd's 10 s), so
		// that the next command sees it stopped.
		t := time.NewTimer(killWaitTimeout)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			log.G(ctx).WithField("container", c.ID).Warn("container did not exit within 10s of SIGKILL")
		}
	}
	return nil
}

// killWaitTimeout is how long Kill waits for the exit after a SIGKILL (dockerd's).
const killWaitTimeout = 10 * time.Second

// Restart stops (if running) and starts a container.
func (s *lifecycle) Restart(ctx context.Context, ref string, timeout *int, signal string) error {
	ctx = context.WithoutCancel(ctx) // finishes even if the client hangs up, as Stop
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if c.State.IsRunning() {
		sig := c.stopSignal()
		if signal != "" {
			if sig, err = signalFromString(signal); err != nil {
				return err
			}
		}
		c.mu.Lock()
		c.HasBeenManuallyStopped = true
		// As dockerd: a restart of a --rm container does not remove it on the way.
		c.restartingByUser = true
		c.mu.Unlock()
		err := s.stop(ctx, c, sig, s.stopTimeout(c, timeout))
		c.mu.Lock()
		c.restartingByUser = false
		c.mu.Unlock()
		if err != nil {
			return err
		}
		// As dockerd: the stop half of a restart is reported as a stop.
		s.logEvent(c, "stop", nil)
	}
	if err := s.Start(ctx, c.ID); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	s.logEvent(c, "restart", nil)
	return nil
}

// Remove removes a container (DELETE /containers/{id}); force kills a running one, removeVolumes removes
// its anonymous volumes.
func (s *lifecycle) Remove(ctx context.Context, ref string, force, removeVolumes bool) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	return s.remove(ctx, c, force, removeVolumes)
}

func (s *lifecycle) remove(ctx context.Context, c *Container, force, removeVolumes bool) error {
	ctx = logCtx(ctx, c)
	if c.State.IsRunning() || c.State.IsRestarting() {
		if !force {
			state := "running"
			if c.State.IsPaused() {
				state = "paused"
			} else if c.State.IsRestarting() {
				state = "restarting"
			}
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %q: container is %s: stop the container before removing or force remove", c.Name, state))
		}
		c.mu.Lock()
		c.HasBeenManuallyStopped = true
		if c.restartCancel != nil {
			c.restartCancel()
			c.restartCancel = nil
		}
		c.mu.Unlock()
		if err := s.stop(ctx, c, syscall.SIGKILL, 0); err != nil {
			return err
		}
	}
	if !c.State.SetRemovalInProgress() {
		if force {
			// rm -f racing the --rm auto-removal (or another rm -f): done when that removal is.
			select {
			case <-c.State.Wait(ctx, "removed"):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return errdefs.ErrConflict.WithMessage("removal of container " + c.ID + " is already in progress")
	}
	tr := newStepTrace(ctx, "container remove")
	defer tr.done()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.task != nil {
		// An exit not yet handled: the exit handler will find no task.
		if _, err := c.task.ForceDelete(ctx); err != nil && !errdefs.IsNotFound(err) {
			c.State.ResetRemovalInProgress()
			return err
		}
		c.task = nil
		s.spec.unmountVolumes(ctx, c)
		s.net.releaseNetwork(ctx, c)
	}
	if c.restartCancel != nil {
		c.restartCancel()
		c.restartCancel = nil
	}
	if s.client != nil && !c.runtimeDeleted {
		s.deleteRuntimeContainer(ctx, c.ID)
	}
	tr.step("runtime")
	if err := s.layers.Remove(ctx, c.ID); err != nil {
		c.State.ResetRemovalInProgress()
		c.State.SetDead()
		return err
	}
	tr.step("layer")
	s.releaseVolumes(ctx, c, removeVolumes)
	if err := os.RemoveAll(c.dir); err != nil {
		log.G(ctx).WithError(err).Warn("remove container directory")
	}
	_ = os.RemoveAll(s.cfg.fifoDir(c.ID))
	tr.step("files")
	s.drop(c)
	s.procs.forgetExecs(c)
	c.State.SetRemoved()
	s.logEvent(c, "destroy", nil)
	return nil
}

// Rename renames a container.
func (s *lifecycle) Rename(ctx context.Context, ref, newName string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	newName = strings.TrimPrefix(newName, "/")
	if err := validateName(newName); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.Name
	if old == "/"+newName {
		return invalidf("Renaming a container with the same name as its current name")
	}
	if err := s.reserveName("/"+newName, c.ID); err != nil {
		return err
	}
	c.Name = "/" + newName
	if err := c.save(); err != nil {
		c.Name = old
		s.releaseName("/" + newName)
		return err
	}
	s.releaseName(old)
	if s.cfg.Networks != nil {
		if err := s.cfg.Networks.Rename(ctx, c.ID, c.Name); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.ID).Warn("rename network endpoints")
		}
	}
	s.logEvent(c, "rename", map[string]string{"oldName": old})
	return nil
}

// Pause freezes a running container.
func (s *lifecycle) Pause(ctx context.Context, ref string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.task == nil || !c.State.IsRunning() {
		return errNotRunning(c.ID)
	}
	if c.State.IsPaused() {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is already paused", c.ID))
	}
	if err := c.task.Pause(ctx); err != nil {
		return err
	}
	c.State.SetPaused(true)
	_ = c.save()
	s.logEvent(c, "pause", nil)
	return nil
}

// Unpause thaws a paused container.
func (s *lifecycle) Unpause(ctx context.Context, ref string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.IsPaused() || c.task == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not paused", c.ID))
	}
	if err := c.task.Resume(ctx); err != nil {
		return err
	}
	c.State.SetPaused(false)
	_ = c.save()
	s.logEvent(c, "unpause", nil)
	return nil
}

// Wait returns the channel of the container's exit status for condition (validated by the router). It
// fails at once (NotFound) for an unknown container, so the router can answer with an error status
// before it sends the 200 headers.
func (s *lifecycle) Wait(ctx context.Context, ref, condition string) (<-chan ExitStatus, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	return c.State.Wait(ctx, condition), nil
}

// Resize resizes the container's TTY.
func (s *lifecycle) Resize(ctx context.Context, ref string, height, width int) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	task := c.task
	c.mu.Unlock()
	if task == nil {
		return errNotRunning(c.ID)
	}
	return task.Resize(ctx, uint32(width), uint32(height))
}
