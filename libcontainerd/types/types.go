// Package types declares the boundary between berthd's services (daemon/containers, the managed-plugin
// executor) and the container runtime: Client, Container, Task, Process, the event callback and the stdio
// plumbing. It holds interfaces and plain data only.
//
// It imports the stdlib and the OCI runtime-spec only: no containerd type appears here, so services and
// their fakes never depend on the containerd client. libcontainerd/remote implements it;
// libcontainerd/types/testutil fakes it in memory for unit tests.
//
// Error classes (github.com/containerd/errdefs), for every method: NotFound (no such container, task or
// process), AlreadyExists (container or exec ID in use), FailedPrecondition (wrong state, e.g. deleting a
// running task), InvalidArgument, Unavailable (containerd unreachable), NotImplemented. Implementations
// classify containerd's errors once, so callers test classes with errdefs.IsXxx and never inspect gRPC codes.
// A process the runtime refuses to start because of its own configuration (command not found or not
// executable, missing cwd, a file mounted onto a directory) is a *ProcessStartError (InvalidArgument) from
// Container.NewTask, Task.Start and Process.Start, with the reason typed so callers never read its text.
//
// Concurrency: all methods are safe for concurrent use. Handles (Container, Task, Process) are cheap views
// on containerd state, not caches: two handles on the same task see the same task.
package types

import (
	"context"
	"io"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultRuntime is the containerd runtime (shim) used when ContainerConfig.Runtime is empty.
const DefaultRuntime = "io.containerd.runc.v2"

// Client is a connection to containerd scoped to one namespace (the daemon uses "berth" for containers
// and "plugins.berth" for managed plugins). Events of that namespace go to the EventCallback given at
// construction.
type Client interface {
	// Version is containerd's version string (e.g. "1.6.20~ds1").
	Version(ctx context.Context) (string, error)
	// NewContainer records a container in containerd (no process yet). AlreadyExists when id is taken.
	NewContainer(ctx context.Context, id string, cfg ContainerConfig) (Container, error)
	// LoadContainer returns a handle on an existing container; NotFound when there is none.
	LoadContainer(ctx context.Context, id string) (Container, error)
	// Containers lists the namespace's containers (for restore and orphan clean-up).
	Containers(ctx context.Context) ([]Container, error)
	// Close ends the event subscription and the connection. Containers keep running.
	Close() error
}

// ContainerConfig describes a container to create.
type ContainerConfig struct {
	// Spec is the OCI runtime spec; required. With a snapshot or task rootfs mounts, Spec.Root.Path is
	// "rootfs" (the bundle dir containerd mounts them on); without, it is an absolute host path that runc
	// uses as is (managed plugins run this way).
	Spec *specs.Spec
	// Snapshotter and SnapshotKey name an existing snapshot (prepared by `layer`, in this client's
	// namespace) that containerd mounts as the rootfs when the task is created. Both empty: no snapshot.
	// The container record references the snapshot for containerd's GC, but Container.Delete leaves it.
	Snapshotter string
	SnapshotKey string
	// Runtime is the shim name; DefaultRuntime when empty.
	Runtime string
	// RuntimeOptions configures the runc shim; nil means runc's defaults.
	RuntimeOptions *RuntimeOptions
	// Labels are stored with the container in containerd.
	Labels map[string]string
}

// RuntimeOptions are the io.containerd.runc.v2 shim options berthd sets (dockerd's --add-runtime,
// --exec-root, native.cgroupdriver).
type RuntimeOptions struct {
	BinaryName    string // runc binary; "runc" from PATH when empty
	Root          string // runc --root state dir
	SystemdCgroup bool
	NoPivotRoot   bool
	ShimCgroup    string
}

// ContainerInfo is what containerd stores about a container.
type ContainerInfo struct {
	ID          string
	Labels      map[string]string
	Runtime     string
	Snapshotter string
	SnapshotKey string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Mount is one rootfs mount handed to the task (a `layer` snapshot's mounts, when the container was not
// created with a snapshot key).
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// Container is a container record in containerd; it has at most one Task (its running init process).
type Container interface {
	ID() string
	Info(ctx context.Context) (ContainerInfo, error)
	// SetLabels merges labels into the stored ones and returns the result.
	SetLabels(ctx context.Context, labels map[string]string) (map[string]string, error)
	// Spec returns the stored OCI spec.
	Spec(ctx context.Context) (*specs.Spec, error)
	// NewTask creates the init process (created, not started: call Task.Start). AlreadyExists when the
	// container has a task.
	NewTask(ctx context.Context, cfg TaskConfig) (Task, error)
	// Task returns the existing task and reattaches its stdio (FIFOs) to attach: this is how a restarted
	// daemon gets a running container back (live-restore). With a nil attach the FIFOs are not opened
	// (enough to inspect, kill or delete the task; a running task whose output nobody reads eventually
	// blocks on a full pipe). NotFound when the container has no task.
	Task(ctx context.Context, attach StdioCallback) (Task, error)
	// Delete removes the container record. Its snapshot is left alone (layer owns it). FailedPrecondition
	// while the container has a task.
	Delete(ctx context.Context) error
}

// IOConfig says how a process' stdio is wired.
type IOConfig struct {
	// FIFODir is the caller's per-container directory under which the stdio FIFOs are made (a fresh
	// subdirectory per process). Their paths are stored by containerd, so a restarted daemon finds them
	// again. Empty: stdio goes to /dev/null and Stdio is not called.
	FIFODir string
	// Terminal allocates a pty: stdout carries both streams and Stdio gets no Stderr. For a task it must
	// match Spec.Process.Terminal; Exec sets the process spec's Terminal from it.
	Terminal bool
	// Stdin opens a stdin FIFO; without it the process' stdin is /dev/null.
	Stdin bool
	// Stdio receives the FIFO ends before the process is created; nil drops the output (the FIFOs are
	// still made so that a later attach can find them).
	Stdio StdioCallback
}

// TaskConfig configures a container's init process.
type TaskConfig struct {
	IOConfig
	// Rootfs mounts, for a container created without a snapshot; nil otherwise.
	Rootfs []Mount
}

// Stdio holds the daemon's ends of a process' FIFOs. Stdin is nil unless requested; Stderr is nil with a
// terminal. Readers see EOF when the process (and everything that inherited its stdio) has exited; read
// to EOF before deleting the task or process, which closes whatever is still open.
type Stdio struct {
	Stdin  io.WriteCloser
	Stdout io.ReadCloser
	Stderr io.ReadCloser
}

// StdioCallback is handed the streams of a new or reattached process and typically starts copy
// goroutines; it must not block. An error aborts the create or attach.
type StdioCallback func(Stdio) error

// Status is a task or process state as containerd reports it.
type Status string

// Task and process states.
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusStopped Status = "stopped"
	StatusPaused  Status = "paused"
	StatusPausing Status = "pausing"
	StatusUnknown Status = "unknown"
)

// ProcessStatus is Status with the exit of a stopped process.
type ProcessStatus struct {
	Status   Status
	ExitCode uint32    // valid when Status is StatusStopped
	ExitedAt time.Time // valid when Status is StatusStopped
}

// ExitStatus is returned by Delete: the exit code and time of the deleted process.
type ExitStatus struct {
	ExitCode uint32
	ExitedAt time.Time
}

// ProcessInfo is one process inside a task, as Pids lists it.
type ProcessInfo struct {
	Pid uint32
	// ProcessID is the exec ID for processes started by Exec, empty for others.
	ProcessID string
}

// Stats is one metrics sample of a task.
//
// Metrics is the cgroup metrics message containerd's shim reports, left undecoded into berthd types
// because its shape is the cgroup driver's: *github.com/containerd/cgroups/stats/v1.Metrics on cgroup v1
// hosts, *github.com/containerd/cgroups/v2/stats.Metrics on cgroup v2 hosts. Consumers type-switch.
type Stats struct {
	Read    time.Time
	Metrics any
}

// Process is an exec'd process (or, through Task, the init process).
type Process interface {
	// ID is the exec ID (the container ID for the init process).
	ID() string
	Pid() uint32
	// Start starts a created process.
	Start(ctx context.Context) error
	Kill(ctx context.Context, sig syscall.Signal) error
	Status(ctx context.Context) (ProcessStatus, error)
	Resize(ctx context.Context, width, height uint32) error
	CloseStdin(ctx context.Context) error
	// Delete removes a stopped process, closes its stdio and returns its exit. FailedPrecondition while
	// it runs.
	Delete(ctx context.Context) (ExitStatus, error)
}

// Task is a container's init process plus the operations on the whole container (cgroup).
type Task interface {
	// ID is the container ID.
	ID() string
	Pid() uint32
	Start(ctx context.Context) error
	// Kill signals the init process, or with all every process of the container.
	Kill(ctx context.Context, sig syscall.Signal, all bool) error
	Status(ctx context.Context) (ProcessStatus, error)
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// Exec creates (does not start) an extra process in the running container. processID is the
	// caller's exec ID; AlreadyExists when taken.
	Exec(ctx context.Context, processID string, spec *specs.Process, io IOConfig) (Process, error)
	// LoadProcess reattaches an exec'd process after a daemon restart; attach may be nil.
	LoadProcess(ctx context.Context, processID string, attach StdioCallback) (Process, error)
	Pids(ctx context.Context) ([]ProcessInfo, error)
	Stats(ctx context.Context) (*Stats, error)
	UpdateResources(ctx context.Context, resources *specs.LinuxResources) error
	CloseStdin(ctx context.Context) error
	Resize(ctx context.Context, width, height uint32) error
	// Delete removes a stopped task, closes its stdio and returns its exit. FailedPrecondition while it
	// runs.
	Delete(ctx context.Context) (ExitStatus, error)
	// ForceDelete kills every process of the task, waits for the exit and deletes it.
	ForceDelete(ctx context.Context) (ExitStatus, error)
}

// EventType is the kind of a task event.
type EventType string

// Task events delivered to an EventCallback.
const (
	EventCreate      EventType = "create"
	EventStart       EventType = "start"
	EventExit        EventType = "exit"
	EventOOM         EventType = "oom"
	EventExecAdded   EventType = "exec-added"
	EventExecStarted EventType = "exec-started"
	EventPaused      EventType = "paused"
	EventResumed     EventType = "resumed"
	EventTaskDeleted EventType = "delete"
	// EventResync means the event stream was re-established after containerd went away (restart or
	// crash): events may have been lost meanwhile, so the receiver should reconcile its state with
	// Task.Status. Its EventInfo is empty.
	EventResync EventType = "resync"
)

// EventInfo carries an event's data; fields not meaningful for a type are zero.
type EventInfo struct {
	ContainerID string
	// ProcessID is the exec ID, or the container ID for the init process.
	ProcessID string
	Pid       uint32
	ExitCode  uint32
	ExitedAt  time.Time
}

// EventCallback receives the namespace's task events. Events of one container arrive in order, one at a
// time; different containers' events may be delivered concurrently. The callback may call back into the
// Client.
type EventCallback func(ctx context.Context, typ EventType, info EventInfo)
