package container

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	containertypes "github.com/docker/docker/api/types/container"
	"gotest.tools/v3/assert"
)

// frozen reads the freezer state of the cgroup of process pid (cgroup v1's freezer or v2's
// cgroup.events).
func frozen(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	assert.NilError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "freezer" {
			st, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state"))
			assert.NilError(t, err)
			return strings.TrimSpace(string(st)) != "THAWED"
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			ev, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", p, "cgroup.events"))
			assert.NilError(t, err)
			return strings.Contains(string(ev), "frozen 1")
		}
	}
	t.Fatalf("no freezer cgroup for pid %d: %s", pid, b)
	return false
}

// docker cp in and out of a directory of a running container does not freeze it: checked while each
// copy's stream is held half-way.
func TestCopyRunningNotFrozen(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	mustDocker(t, d, "run", "-d", "--name", "nf", "busybox", "sh", "-c",
		"mkdir /big && dd if=/dev/zero of=/big/f bs=1M count=64 2>/dev/null && touch /ready && sleep 1000")
	waitFor(t, 30*time.Second, "the container's files", func() bool {
		return d.Docker(t, "exec", "nf", "test", "-e", "/ready").ExitCode == 0
	})
	inspect, err := c.ContainerInspect(ctx, "nf")
	assert.NilError(t, err)
	pid := inspect.State.Pid
	assert.Assert(t, !frozen(t, pid))

	// Copy in: the server has the first entry and waits for the rest of its body.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- c.CopyToContainer(ctx, "nf", "/tmp", pr, containertypes.CopyToContainerOptions{})
	}()
	tw := tar.NewWriter(pw)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "in", Mode: 0o644, Size: 2 << 20, Typeflag: tar.TypeReg}))
	_, err = tw.Write(make([]byte, 1<<20))
	assert.NilError(t, err)
	// Looked at from the host: an exec would hang in a frozen container.
	waitFor(t, 30*time.Second, "the first MiB in the container", func() bool {
		fi, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "root", "tmp", "in"))
		return err == nil && fi.Size() >= 64<<10
	})
	assert.Assert(t, !frozen(t, pid), "the container is frozen during a copy in")
	_, err = tw.Write(make([]byte, 1<<20))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	assert.NilError(t, pw.Close())
	assert.NilError(t, <-done)

	// Copy out of a directory: the server blocks on a stream the client does not read.
	rc, _, err := c.CopyFromContainer(ctx, "nf", "/big")
	assert.NilError(t, err)
	buf := make([]byte, 4096)
	_, err = io.ReadFull(rc, buf)
	assert.NilError(t, err)
	assert.Assert(t, !frozen(t, pid), "the container is frozen during a copy out of a directory")
	rc.Close()
	mustDocker(t, d, "exec", "nf", "true")
}
