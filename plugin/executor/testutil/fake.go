// Package testutil holds a fake executor.Executor for the manager's tests: a "task" is an HTTP server on
// the plugin's socket (found through the spec's /run/docker/plugins bind mount) answering
// /Plugin.Activate, so the manager's socket wait and activation run for real without containerd.
package testutil

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthd/berthd/plugin/executor"
)

// Executor is the fake. Fields may be set before use.
type Executor struct {
	// SocketName is the socket file the fake plugin listens on (the manifest's Interface.Socket).
	SocketName string
	// NoSocket makes tasks start without ever listening (a plugin that never comes up).
	NoSocket bool

	mu      sync.Mutex
	handler executor.ExitHandler
	tasks   map[string]*task
	creates map[string]int
	specs   map[string]*specs.Spec
	nextPid uint32
}

type task struct {
	srv *http.Server
	pid uint32
}

// New returns a fake executor.
func New(socketName string) *Executor {
	return &Executor{SocketName: socketName, tasks: map[string]*task{}, creates: map[string]int{}, specs: map[string]*specs.Spec{}, nextPid: 1000}
}

// Factory is a manager.NewExecutorFunc-shaped constructor that hands out this fake.
func (f *Executor) Factory(_ context.Context, h executor.ExitHandler) (executor.Executor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
	return f, nil
}

// Creates counts Create calls for id.
func (f *Executor) Creates(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates[id]
}

// Spec is the last spec id was created with.
func (f *Executor) Spec(id string) *specs.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.specs[id]
}

// Create implements executor.Executor.
func (f *Executor) Create(_ context.Context, id string, spec *specs.Spec, stdout, stderr io.WriteCloser) error {
	stdout.Close()
	stderr.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.tasks[id]; old != nil && old.srv != nil {
		old.srv.Close()
	}
	f.creates[id]++
	f.specs[id] = spec
	f.nextPid++
	t := &task{pid: f.nextPid}
	if !f.NoSocket {
		var dir string
		for _, m := range spec.Mounts {
			if m.Destination == "/run/docker/plugins" {
				dir = m.Source
			}
		}
		if dir == "" {
			return fmt.Errorf("fake executor: no /run/docker/plugins mount")
		}
		l, err := net.Listen("unix", filepath.Join(dir, f.SocketName))
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"Implements":["VolumeDriver"]}`))
		})
		t.srv = &http.Server{Handler: mux}
		go func() { _ = t.srv.Serve(l) }()
	}
	f.tasks[id] = t
	return nil
}

// Restore implements executor.Executor: a task this fake still runs is alive.
func (f *Executor) Restore(_ context.Context, id string, stdout, stderr io.WriteCloser) (bool, error) {
	stdout.Close()
	stderr.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tasks[id] != nil, nil
}

// IsRunning implements executor.Executor.
func (f *Executor) IsRunning(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tasks[id] != nil, nil
}

// Signal implements executor.Executor: any signal ends the task and reports the exit.
func (f *Executor) Signal(_ context.Context, id string, _ syscall.Signal) error {
	return f.Crash(id)
}

// Crash ends id's task as if it died, and reports the exit.
func (f *Executor) Crash(id string) error {
	f.mu.Lock()
	t := f.tasks[id]
	delete(f.tasks, id)
	h := f.handler
	f.mu.Unlock()
	if t == nil {
		return errdefs.ErrNotFound.WithMessage("no task " + id)
	}
	if t.srv != nil {
		t.srv.Close()
	}
	if h != nil {
		go func() { _ = h.HandleExitEvent(id) }()
	}
	return nil
}

// Pid implements executor.Executor.
func (f *Executor) Pid(_ context.Context, id string) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tasks[id]; t != nil {
		return t.pid, nil
	}
	return 0, errdefs.ErrNotFound.WithMessage("no task " + id)
}

// Close implements executor.Executor; tasks keep "running" (as containerd's would).
func (f *Executor) Close() error { return nil }

// StopAll ends every task without reporting exits (a host reboot between daemon runs).
func (f *Executor) StopAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, t := range f.tasks {
		if t.srv != nil {
			t.srv.Close()
		}
		delete(f.tasks, id)
	}
}
