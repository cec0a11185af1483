package containers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/go-units"
)

// State is a container's lifecycle state. Transitions (Set*) are made by the service with the container
// locked; waiters (Wait) are woken on every stop and on removal. The zero value is "created".
//
//	created --start--> running --exit--> exited --start--> running ...
//	running --pause--> paused --unpause--> running
//	exited --restart policy--> restarting --start--> running
//	any --rm--> removing --> (removed: waiters of "removed" woken)
type State struct {
	mu sync.Mutex
	stateFields

	stopWaiters   []chan ExitStatus
	removeWaiters []chan ExitStatus
	removed       bool
}

// ExitStatus is what a waiter receives.
type ExitStatus struct {
	ExitCode int
	Err      string
}

// StateString is the status word of inspect and `ps --filter status=`.
func (s *State) StateString() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateStringLocked()
}

func (s *State) stateStringLocked() string {
	switch {
	case s.Running && s.Paused:
		return "paused"
	case s.Restarting:
		return "restarting"
	case s.Running:
		return "running"
	case s.RemovalInProgress:
		return "removing"
	case s.Dead:
		return "dead"
	case s.StartedAt.IsZero():
		return "created"
	}
	return "exited"
}

// String is the human status of `docker ps`.
func (s *State) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch {
	case s.Running && s.Paused:
		return fmt.Sprintf("Up %s (Paused)", units.HumanDuration(now.Sub(s.StartedAt)))
	case s.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case s.Running:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt))
	case s.RemovalInProgress:
		return "Removal In Progress"
	case s.Dead:
		return "Dead"
	case s.StartedAt.IsZero():
		return "Created"
	case s.FinishedAt.IsZero():
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
}

// IsRunning reports whether the container has a live process.
func (s *State) IsRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Running
}

// IsPaused reports whether the container is paused.
func (s *State) IsPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Running && s.Paused
}

// IsRestarting reports whether a restart is scheduled.
func (s *State) IsRestarting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Restarting
}

// SetRunning records a started process.
func (s *State) SetRunning(pid int, initial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Error = ""
	s.Running, s.Paused, s.Restarting, s.Dead = true, false, false, false
	s.OOMKilled = false
	s.Pid = pid
	if initial {
		s.StartedAt = time.Now().UTC()
	}
}

// SetStopped records an exit and wakes the stop waiters.
func (s *State) SetStopped(code int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Running, s.Paused, s.Restarting = false, false, false
	s.Pid = 0
	s.ExitCode = code
	if at.IsZero() {
		at = time.Now()
	}
	s.FinishedAt = at.UTC()
	st := ExitStatus{ExitCode: code, Err: s.Error}
	for _, w := range s.stopWaiters {
		w <- st
	}
	s.stopWaiters = nil
}

// SetRestarting records an exit after which the restart policy restarts the container. Stop waiters are
// woken (the process did exit).
func (s *State) SetRestarting(code int, at time.Time) {
	s.SetStopped(code, at)
	s.mu.Lock()
	s.Restarting = true
	s.mu.Unlock()
}

// SetError records a start failure (exit code 128 or the given one, as dockerd).
func (s *State) SetError(err error, code int) {
	s.mu.Lock()
	s.Error = err.Error()
	s.mu.Unlock()
	if code != 0 {
		s.mu.Lock()
		s.ExitCode = code
		s.mu.Unlock()
	}
}

// SetPaused and SetUnpaused follow the task.
func (s *State) SetPaused(p bool) {
	s.mu.Lock()
	s.Paused = p
	s.mu.Unlock()
}

// SetRemovalInProgress marks a removal; false when one is already under way.
func (s *State) SetRemovalInProgress() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.RemovalInProgress {
		return false
	}
	s.RemovalInProgress = true
	return true
}

// ResetRemovalInProgress undoes SetRemovalInProgress after a failed removal.
func (s *State) ResetRemovalInProgress() {
	s.mu.Lock()
	s.RemovalInProgress = false
	s.mu.Unlock()
}

// SetDead marks a container whose removal failed half-way.
func (s *State) SetDead() {
	s.mu.Lock()
	s.Dead = true
	s.mu.Unlock()
}

// SetRemoved wakes every waiter: the container is gone.
func (s *State) SetRemoved() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = true
	st := ExitStatus{ExitCode: s.ExitCode, Err: s.Error}
	for _, w := range s.removeWaiters {
		w <- st
	}
	s.removeWaiters = nil
	for _, w := range s.stopWaiters {
		w <- st
	}
	s.stopWaiters = nil
}

// Wait returns a channel that receives the exit status once condition holds: "not-running" (now, if the
// container is not running), "next-exit" (the next exit) or "removed". The channel is buffered; a waiter
// whose ctx ends is simply never read.
func (s *State) Wait(ctx context.Context, condition string) <-chan ExitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan ExitStatus, 1)
	st := ExitStatus{ExitCode: s.ExitCode, Err: s.Error}
	switch condition {
	case "removed":
		if s.removed {
			ch <- st
			return ch
		}
		s.removeWaiters = append(s.removeWaiters, ch)
	case "next-exit":
		if s.removed {
			ch <- st
			return ch
		}
		s.stopWaiters = append(s.stopWaiters, ch)
	default:
		if !s.Running && !s.Restarting || s.removed {
			ch <- st
			return ch
		}
		s.stopWaiters = append(s.stopWaiters, ch)
	}
	return ch
}

// snapshot copies the exported fields (for persisting and inspect) without the waiters.
func (s *State) snapshot() stateRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return stateRecord{Status: s.stateStringLocked(), stateFields: s.stateFields}
}

func (s *State) restoreFrom(r stateRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stateFields = r.stateFields
}

// stateFields are what State keeps of a container's life and what is persisted of it.
type stateFields struct {
	Running           bool
	Paused            bool
	Restarting        bool
	OOMKilled         bool
	RemovalInProgress bool
	Dead              bool
	Pid               int
	ExitCode          int
	Error             string
	StartedAt         time.Time
	FinishedAt        time.Time
}

// stateRecord is State on disk (the same JSON keys as before the fields were shared: embedded fields
// are flattened).
type stateRecord struct {
	Status string
	stateFields
}
