package buildkit

import (
	"context"
	"sync"
	"time"

	"github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
)

// trackedExecutor is BuildKit's runc executor with a count of the steps it is running. runc runs them
// as berthd's children, outside containerd: a step still running when berthd exits would be orphaned
// (its runc dies with berthd, the container's processes do not), so Close cancels the builds and waits
// here for their steps to be killed.
type trackedExecutor struct {
	executor.Executor
	wg sync.WaitGroup
}

func (e *trackedExecutor) Run(ctx context.Context, id string, rootfs executor.Mount, mounts []executor.Mount, process executor.ProcessInfo, started chan<- struct{}) (resourcestypes.Recorder, error) {
	e.wg.Add(1)
	defer e.wg.Done()
	return e.Executor.Run(ctx, id, rootfs, mounts, process, started)
}

func (e *trackedExecutor) Exec(ctx context.Context, id string, process executor.ProcessInfo) error {
	e.wg.Add(1)
	defer e.wg.Done()
	return e.Executor.Exec(ctx, id, process)
}

// wait waits until no step runs, for at most d; it reports whether they all ended.
func (e *trackedExecutor) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
