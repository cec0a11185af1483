package containers

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ltypes "github.com/berthd/berthd/libcontainerd/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// A --rm container whose init exited in a PID namespace of its own has no process left: nothing of it can
// be observed any more, so it is removed at once (record, name, volumes, network) while containerd's task
// teardown (shim delete, runc delete, the shim's own clean-up, rootfs unmount: most of the time between
// the exit and the removal) goes on in the background, and the RW layer goes after it. `docker run --rm`
// returns that much earlier. The record directory is first renamed to trashPrefix+ID, which restore
// treats as "removal to finish": a crash in between leaves nothing behind for good.
const trashPrefix = ".removing-"

// quickRemoval says whether c's exit may take the path above; c.mu is held. It marks the removal.
func quickRemoval(c *Container, restart bool) bool {
	hc := c.HostConfig
	if !hc.AutoRemove || restart || c.restartingByUser || hc.PidMode != "" {
		return false
	}
	return c.State.SetRemovalInProgress()
}

// exitAndRemove is handleExit for quickRemoval: c.mu is held and released here. released is closed when
// the network is released.
func (s *lifecycle) exitAndRemove(ctx context.Context, c *Container, task ltypes.Task, code int, at time.Time, released <-chan struct{}, tr *stepTrace) {
	torndown := make(chan struct{})
	ctr := c.ctr
	c.task, c.ctr = nil, nil
	s.teardowns.Add(1)
	go func() {
		defer s.teardowns.Done()
		defer close(torndown)
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("delete task")
			_, _ = task.ForceDelete(ctx)
		}
		if ctr != nil {
			if err := ctr.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).Warn("delete containerd container")
			}
		} else {
			s.deleteRuntimeContainer(ctx, c.ID)
		}
	}()
	c.stopHealth()
	s.procs.failExecs(c)
	s.spec.unmountVolumes(ctx, c)
	<-released
	tr.step("release")
	if c.logw != nil {
		c.logw.Close()
		c.logw = nil
	}
	c.State.SetStopped(code, at)
	s.logEvent(c, "die", map[string]string{"exitCode": strconv.Itoa(code)})
	if c.exited != nil {
		close(c.exited)
		c.exited = nil
	}
	defer c.mu.Unlock()

	trash := filepath.Join(s.cfg.Root, trashPrefix+c.ID)
	if err := os.Rename(c.dir, trash); err != nil {
		// Without the marker a crash could leave the layer behind: remove the ordinary way.
		log.G(ctx).WithError(err).Warn("mark container for removal")
		<-torndown
		c.runtimeDeleted = true
		c.State.ResetRemovalInProgress()
		c.mu.Unlock()
		if err := s.remove(ctx, c, true, true); err != nil {
			log.G(ctx).WithError(err).Warn("auto-remove container")
		}
		c.mu.Lock()
		return
	}
	s.releaseVolumes(ctx, c, true)
	s.drop(c)
	s.procs.forgetExecs(c)
	c.State.SetRemoved()
	s.logEvent(c, "destroy", nil)
	tr.step("remove")
	s.teardowns.Add(1)
	go func() {
		defer s.teardowns.Done()
		<-torndown
		s.finishRemoval(ctx, c.ID, trash)
	}()
}

// finishRemoval removes what is left of a removed container once containerd no longer uses it: the RW
// layer, then the renamed record directory and the FIFOs. On failure the directory stays, for the next
// restore to try again.
func (s *lifecycle) finishRemoval(ctx context.Context, id, trash string) {
	if err := s.layers.Remove(ctx, id); err != nil {
		log.G(ctx).WithError(err).WithField("container", id).Warn("remove RW layer of removed container")
		return
	}
	if err := os.RemoveAll(trash); err != nil {
		log.G(ctx).WithError(err).WithField("container", id).Warn("remove container directory")
	}
	_ = os.RemoveAll(s.cfg.fifoDir(id))
}

// finishRemovals completes the removals a previous run left half-done (see trashPrefix); containerd's
// containers without a record are gone already (removeOrphans).
func (s *lifecycle) finishRemovals(ctx context.Context) {
	ents, err := os.ReadDir(s.cfg.Root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), trashPrefix); ok && e.IsDir() {
			s.finishRemoval(ctx, id, filepath.Join(s.cfg.Root, e.Name()))
		}
	}
}

// waitTeardowns waits for the background teardowns to finish, or ctx.
func (s *lifecycle) waitTeardowns(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.teardowns.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
