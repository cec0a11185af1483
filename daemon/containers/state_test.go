package containers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func recv(t *testing.T, ch <-chan ExitStatus) ExitStatus {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("no exit status")
	}
	return ExitStatus{}
}

func pending(ch <-chan ExitStatus) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func TestStateTransitions(t *testing.T) {
	ctx := context.Background()
	s := &State{}
	assert.Equal(t, s.StateString(), "created")
	assert.Equal(t, s.String(), "Created")
	// not-running on a created container answers at once.
	assert.Equal(t, recv(t, s.Wait(ctx, "not-running")).ExitCode, 0)

	next := s.Wait(ctx, "next-exit")
	removed := s.Wait(ctx, "removed")
	s.SetRunning(42, true)
	assert.Equal(t, s.StateString(), "running")
	assert.Assert(t, s.IsRunning())
	notRunning := s.Wait(ctx, "not-running")
	assert.Assert(t, pending(notRunning) && pending(next))

	s.SetPaused(true)
	assert.Equal(t, s.StateString(), "paused")
	s.SetPaused(false)

	s.SetStopped(3, time.Now())
	assert.Equal(t, s.StateString(), "exited")
	assert.Equal(t, recv(t, next).ExitCode, 3)
	assert.Equal(t, recv(t, notRunning).ExitCode, 3)
	assert.Assert(t, pending(removed))
	assert.Equal(t, s.snapshot().Pid, 0)

	// restarting counts as an exit for stop waiters but not for not-running.
	s.SetRunning(43, true)
	s.SetRestarting(1, time.Now())
	assert.Equal(t, s.StateString(), "restarting")
	nr := s.Wait(ctx, "not-running")
	assert.Assert(t, pending(nr))
	s.SetRunning(44, true)
	s.SetError(errors.New("boom"), 128)
	s.SetStopped(128, time.Now())
	st := recv(t, nr)
	assert.Equal(t, st.ExitCode, 128)
	assert.Equal(t, st.Err, "boom")

	assert.Assert(t, s.SetRemovalInProgress())
	assert.Assert(t, !s.SetRemovalInProgress())
	assert.Equal(t, s.StateString(), "removing")
	s.SetRemoved()
	assert.Equal(t, recv(t, removed).ExitCode, 128)
	// after removal every condition answers at once.
	assert.Equal(t, recv(t, s.Wait(ctx, "next-exit")).ExitCode, 128)
	assert.Equal(t, recv(t, s.Wait(ctx, "removed")).ExitCode, 128)
}

func TestStateRecordRoundTrip(t *testing.T) {
	s := &State{}
	s.SetRunning(7, true)
	r := s.snapshot()
	var s2 State
	s2.restoreFrom(r)
	assert.Assert(t, s2.IsRunning())
	assert.Equal(t, s2.snapshot().Pid, 7)
	assert.Equal(t, s2.snapshot().Status, "running")
}

func TestSignalsAndEnv(t *testing.T) {
	for in, want := range map[string]int{"TERM": 15, "SIGKILL": 9, "sigint": 2, "10": 10} {
		sig, err := signalFromString(in)
		assert.NilError(t, err)
		assert.Equal(t, int(sig), want)
	}
	for _, bad := range []string{"", "FOO", "0", "99"} {
		_, err := signalFromString(bad)
		assert.ErrorContains(t, err, "Invalid signal")
	}
	assert.DeepEqual(t, replaceOrAppendEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4"}), []string{"A=1", "B=3", "C=4"})
	// A bare NAME unsets it (docker run -e NAME with NAME unset on the client); runc refuses it as is.
	assert.DeepEqual(t, replaceOrAppendEnv([]string{"A=1", "B=2"}, []string{"A", "UNSET", "C=", "D=x=y"}), []string{"B=2", "C=", "D=x=y"})
	assert.Equal(t, withDefaultTag("busybox"), "busybox:latest")
	assert.Equal(t, withDefaultTag("localhost:5000/x"), "localhost:5000/x:latest")
	assert.Equal(t, withDefaultTag("x:1"), "x:1")
}

func TestDetachReader(t *testing.T) {
	keys, err := parseDetachKeys("")
	assert.NilError(t, err)
	assert.DeepEqual(t, keys, []byte{16, 17})
	_, err = parseDetachKeys("ctrl-1")
	assert.ErrorContains(t, err, "Invalid detach keys")

	var out bytes.Buffer
	_, err = io.Copy(&out, &detachReader{r: strings.NewReader("ab\x10c\x10\x11zz"), keys: keys})
	assert.Equal(t, err, errDetached)
	assert.Equal(t, out.String(), "ab\x10c")

	out.Reset()
	_, err = io.Copy(&out, &detachReader{r: strings.NewReader("plain\x10"), keys: keys})
	assert.NilError(t, err)
	assert.Equal(t, out.String(), "plain\x10")
}
