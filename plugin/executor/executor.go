// Package executor declares how the plugin manager runs managed plugins: an Executor starts, restores,
// signals and reports on one task per plugin, and tells an ExitHandler when a plugin's task exits.
// Interfaces only; the containerd implementation is plugin/executor/containerd. It imports runtime-spec
// and the stdlib only.
package executor

import (
	"context"
	"io"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Executor runs plugins, one task per plugin ID.
//
// Error classes (containerd/errdefs): NotFound when a plugin has no task, Unavailable when the runtime
// cannot be reached. Safe for concurrent use; calls for one ID are serialized by the manager.
type Executor interface {
	// Create starts the plugin's task with spec, replacing any container or task left with the same ID.
	// stdout and stderr receive the plugin's output until it exits (then they are closed).
	Create(ctx context.Context, id string, spec *specs.Spec, stdout, stderr io.WriteCloser) error
	// Restore reattaches to a task that survived a daemon restart. alive is false (and leftovers are
	// removed) when there is none or it has stopped.
	Restore(ctx context.Context, id string, stdout, stderr io.WriteCloser) (alive bool, err error)
	// IsRunning reports whether the plugin's task is running.
	IsRunning(ctx context.Context, id string) (bool, error)
	// Signal sends sig to every process of the plugin's task.
	Signal(ctx context.Context, id string, sig syscall.Signal) error
	// Pid is the task's init pid (for tests and diagnostics).
	Pid(ctx context.Context, id string) (uint32, error)
	// Close releases the connection; plugin tasks keep running.
	Close() error
}

// ExitHandler is told when a plugin's task has exited and its task and container were removed. It is
// called in its own goroutine and may call back into the Executor (to start the plugin again).
type ExitHandler interface {
	HandleExitEvent(id string) error
}
