package container

import (
	"context"
	"io"

	"github.com/berthd/berthd/api/types/container"
)

// Backend is what the container router needs, one interface per route group (the parts of
// daemon/containers that serve them). Errors are classified (errdefs classes or marker methods); NotFound
// for an unknown container or exec, Conflict for a wrong state, NotModified for start/stop that had
// nothing to do.
type Backend interface {
	LifecycleBackend
	QueryBackend
	StreamBackend
	MonitorBackend
	FilesystemBackend
	ExecBackend
}

// LifecycleBackend serves create, start, stop, kill, restart, rm, rename, pause, wait, resize and update.
type LifecycleBackend interface {
	ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, ref string) error
	ContainerStop(ctx context.Context, ref string, timeout *int, signal string) error
	ContainerKill(ctx context.Context, ref, signal string) error
	ContainerRestart(ctx context.Context, ref string, timeout *int, signal string) error
	ContainerRemove(ctx context.Context, ref string, force, removeVolumes bool) error
	ContainerRename(ctx context.Context, ref, newName string) error
	ContainerPause(ctx context.Context, ref string) error
	ContainerUnpause(ctx context.Context, ref string) error
	// ContainerWait fails at once for an unknown container; the channel yields one answer later.
	ContainerWait(ctx context.Context, ref, condition string) (<-chan container.WaitResponse, error)
	ContainerResize(ctx context.Context, ref string, height, width int) error
	// ContainerUpdate changes resources and the restart policy; it returns warnings.
	ContainerUpdate(ctx context.Context, ref string, u container.UpdateConfig) ([]string, error)
}

// QueryBackend serves ps, inspect and prune.
type QueryBackend interface {
	ContainerList(ctx context.Context, opts container.ListOptions) ([]*container.Summary, error)
	ContainerInspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error)
	ContainersPrune(ctx context.Context, filtersJSON string) (*container.PruneReport, error)
}

// StreamBackend serves logs and attach.
type StreamBackend interface {
	// ContainerLogs checks the request, then run streams the log into stdout/stderr.
	ContainerLogs(ctx context.Context, ref string, opts container.LogsOptions) (tty bool, run func(stdout, stderr io.Writer) error, err error)
	// ContainerAttachCheck fails before the connection is hijacked (also on invalid detach keys); it
	// reports whether the container has a TTY (raw stream) or not (multiplexed).
	ContainerAttachCheck(ctx context.Context, ref, detachKeys string) (tty bool, err error)
	// ContainerAttach copies stdio until the run ends or the client leaves; ready is called once the
	// client is registered, before any output.
	ContainerAttach(ctx context.Context, ref string, opts container.AttachOptions, stdin io.Reader, stdout, stderr io.Writer, ready func()) error
}

// MonitorBackend serves top and stats.
type MonitorBackend interface {
	ContainerTop(ctx context.Context, ref, psArgs string) (*container.TopResponse, error)
	// ContainerStats emits one sample, or one a second until ctx ends when stream is set. A one-shot sample
	// has no baseline (PreCPUStats zero), as dockerd's.
	ContainerStats(ctx context.Context, ref string, stream, oneShot bool, emit func(container.StatsResponse) error) error
}

// FilesystemBackend serves commit, diff, export and cp.
type FilesystemBackend interface {
	// ContainerCommit makes an image of the container's changes and returns its ID.
	ContainerCommit(ctx context.Context, ref string, opts container.CommitOptions) (string, error)
	// ContainerChanges lists the filesystem changes of the container.
	ContainerChanges(ctx context.Context, ref string) ([]container.FilesystemChange, error)
	// ContainerExport writes the container's filesystem as a tar.
	ContainerExport(ctx context.Context, ref string, w io.Writer) error
	// ContainerArchiveStat and ContainerArchive serve `docker cp` out of a container.
	ContainerArchiveStat(ctx context.Context, ref, path string) (*container.PathStat, error)
	ContainerArchive(ctx context.Context, ref, path string, w io.Writer) error
	// ContainerExtractToDir serves `docker cp` into a container: a tar extracted under path.
	ContainerExtractToDir(ctx context.Context, ref, path string, r io.Reader) error
}

// ExecBackend serves docker exec.
type ExecBackend interface {
	ExecCreate(ctx context.Context, ref string, opts container.ExecOptions) (string, error)
	// ExecCheck reports the exec's TTY and fails for an unknown exec.
	ExecCheck(ctx context.Context, id string) (tty bool, err error)
	// ExecStart starts the exec; with nil streams it is detached and returns at once.
	ExecStart(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, consoleSize *[2]uint) error
	ExecInspect(ctx context.Context, id string) (*container.ExecInspect, error)
	ExecResize(ctx context.Context, id string, height, width int) error
}
