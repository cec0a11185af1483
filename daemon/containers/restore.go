package containers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/logger/jsonfile"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	volumeservice "github.com/berthd/berthd/volume/service"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// restoreParallel bounds concurrent record loads and containerd look-ups at start-up.
const restoreParallel = 32

// Restore loads every container record, reattaches running tasks (live-restore) or stops them, rebuilds
// volume references, removes containerd containers nobody owns, then applies restart policies and --rm.
// It returns once references are rebuilt and live containers reattached; policy restarts run in the
// background.
func (s *restorer) Restore(ctx context.Context) error {
	ents, err := os.ReadDir(s.cfg.Root)
	if err != nil {
		return err
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, restoreParallel)
		cs  []*Container
	)
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), trashPrefix) {
			continue
		}
		dir := filepath.Join(s.cfg.Root, e.Name())
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := load(dir)
			if err != nil {
				log.G(ctx).WithError(err).WithField("dir", dir).Warn("skipping container that does not load")
				return
			}
			c.streams = newStreams(c.Config.OpenStdin)
			mu.Lock()
			cs = append(cs, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range cs {
		s.add(c)
	}

	// One listing of containerd's containers: a stopped container costs no containerd call at start-up.
	live := map[string]ltypes.Container{}
	if s.client != nil {
		list, err := s.client.Containers(ctx)
		if err != nil {
			return err
		}
		for _, ctr := range list {
			live[ctr.ID()] = ctr
		}
	}
	var restart []*Container
	for _, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			wasRunning := s.restoreOne(ctx, c, live[c.ID])
			if !c.State.IsRunning() {
				mu.Lock()
				if c.HostConfig.AutoRemove && c.HasBeenStartedBefore || s.restartOnBoot(c, wasRunning) {
					restart = append(restart, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.removeOrphans(ctx, live)
	s.life.finishRemovals(ctx)
	for _, c := range restart {
		go func() {
			ctx := context.WithoutCancel(ctx)
			if c.HostConfig.AutoRemove {
				if err := s.life.remove(ctx, c, true, true); err != nil {
					log.G(ctx).WithError(err).WithField("container", c.ID).Warn("remove --rm container at start-up")
				}
				return
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if err := s.life.startLocked(logCtx(ctx, c), c); err != nil {
				log.G(ctx).WithError(err).WithField("container", c.ID).Warn("restart container at start-up")
			}
		}()
	}
	return nil
}

func (s *restorer) restartOnBoot(c *Container, wasRunning bool) bool {
	if c.HasBeenManuallyStopped {
		return false
	}
	switch c.HostConfig.RestartPolicy.Name {
	case ctypes.RestartPolicyAlways, ctypes.RestartPolicyUnlessStopped:
		return true
	case ctypes.RestartPolicyOnFailure:
		return wasRunning
	}
	return false
}

// restoreOne reconciles one container with containerd; it reports whether the record said "running".
func (s *restorer) restoreOne(ctx context.Context, c *Container, ctr ltypes.Container) bool {
	ctx = logCtx(ctx, c)
	for _, mp := range c.MountPoints {
		if mp.Type == ctypes.MountTypeVolume && mp.Name != "" {
			if _, err := s.volumes.Get(ctx, mp.Name, volumeservice.WithGetReference(c.ID)); err != nil {
				log.G(ctx).WithError(err).WithField("volume", mp.Name).Warn("volume of container not found at restore")
			}
		}
	}
	st := c.State.snapshot()
	wasRunning := st.Running
	c.mu.Lock()
	defer c.mu.Unlock()
	code, at := 255, time.Now()
	if s.client != nil {
		if ctr != nil {
			var lw *jsonfile.Writer
			if s.cfg.LiveRestore {
				lw, _ = openLog(c)
			}
			streams := c.streams
			var attach ltypes.StdioCallback
			closeIO, setTask := stdinCloser()
			if s.cfg.LiveRestore {
				attach = func(stdio ltypes.Stdio) error {
					streams.run(stdio, lw, closeIO)
					return nil
				}
			}
			task, err := ctr.Task(ctx, attach)
			if err == nil {
				setTask(task)
			}
			if err == nil {
				ps, serr := task.Status(ctx)
				live := serr == nil && (ps.Status == ltypes.StatusRunning || ps.Status == ltypes.StatusPaused || ps.Status == ltypes.StatusPausing)
				if live && s.cfg.LiveRestore {
					c.task, c.ctr, c.logw, c.exited = task, ctr, lw, make(chan struct{})
					c.State.SetRunning(int(task.Pid()), false)
					c.State.SetPaused(ps.Status != ltypes.StatusRunning)
					for _, mp := range c.MountPoints {
						if mp.Type == ctypes.MountTypeVolume && mp.ID != "" {
							if err := s.volumes.LiveRestoreVolume(ctx, mp.Name, mp.ID); err != nil {
								log.G(ctx).WithError(err).WithField("volume", mp.Name).Warn("live-restore volume")
							}
						}
					}
					_ = c.save()
					log.G(ctx).Debug("container live-restored")
					return wasRunning
				}
				if live {
					_ = task.Kill(ctx, syscall.SIGKILL, true)
				}
				if done := c.streams.done(); done != nil && s.cfg.LiveRestore {
					select {
					case <-done:
					case <-time.After(drainTimeout):
					}
				}
				if es, err := task.ForceDelete(ctx); err == nil {
					code, at = int(es.ExitCode), es.ExitedAt
				}
			}
			if lw != nil {
				lw.Close()
			}
			if err := ctr.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).Warn("delete containerd container at restore")
			}
		}
	}
	if wasRunning || st.Restarting {
		s.mounts.unmountVolumes(ctx, c)
		s.net.releaseNetwork(ctx, c)
		if !wasRunning {
			code, at = st.ExitCode, st.FinishedAt
		}
		c.State.SetStopped(code, at)
		if err := c.save(); err != nil {
			log.G(ctx).WithError(err).Warn("save container state")
		}
		if wasRunning {
			s.logEvent(c, "die", map[string]string{"exitCode": itoa(code)})
		}
	}
	return wasRunning
}

// removeOrphans deletes containerd containers of our namespace that have no record (a crash between
// creating the task and saving the record, or a record removed by hand).
func (s *restorer) removeOrphans(ctx context.Context, live map[string]ltypes.Container) {
	for id, ctr := range live {
		if s.byExactID(id) != nil {
			continue
		}
		if t, err := ctr.Task(ctx, nil); err == nil {
			_, _ = t.ForceDelete(ctx)
		}
		_ = ctr.Delete(ctx)
		log.G(ctx).WithField("container", id).Info("removed orphaned containerd container")
	}
}

// Shutdown stops running containers (each with its stop timeout), unless live-restore leaves them
// running; either way pending policy restarts are cancelled.
func (s *restorer) Shutdown(ctx context.Context) error {
	s.downMu.Lock()
	s.shuttingDown = true
	s.downMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range s.list() {
		c.mu.Lock()
		if c.restartCancel != nil {
			c.restartCancel()
			c.restartCancel = nil
		}
		running := c.task != nil
		c.mu.Unlock()
		if !running || s.cfg.LiveRestore {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.life.stop(ctx, c, c.stopSignal(), s.life.stopTimeout(c, nil)); err != nil {
				log.G(ctx).WithError(err).WithField("container", c.ID).Warn("stop container at shutdown")
			}
		}()
	}
	wg.Wait()
	s.life.waitTeardowns(ctx)
	if s.cfg.LiveRestore {
		for _, c := range s.list() {
			c.mu.Lock()
			if c.logw != nil {
				// The shim keeps the FIFOs; output written while berthd is down waits in the pipe.
				_ = c.logw
			}
			c.mu.Unlock()
		}
	}
	return nil
}

// MaxStopTimeout is the longest stop timeout of any container (the daemon's shutdown bound).
func (b *RestoreAPI) MaxStopTimeout() time.Duration {
	max := b.restore.cfg.DefaultStopTimeout
	for _, c := range b.restore.list() {
		if t := b.restore.life.stopTimeout(c, nil); t > max {
			max = t
		}
	}
	return max
}
