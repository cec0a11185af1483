package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestContainerDefaults: default-ulimits (a container's own --ulimit wins), default-shm-size,
// cgroup-parent, init and a registered default runtime reach new containers.
func TestContainerDefaults(t *testing.T) {
	dir := t.TempDir()
	wrapLog := filepath.Join(dir, "runtime.log")
	wrapper := filepath.Join(dir, "runc-wrap")
	assert.NilError(t, os.WriteFile(wrapper, []byte("#!/bin/sh\necho \"$@\" >> "+wrapLog+"\nexec runc \"$@\"\n"), 0o755))
	d := daemon.NewWithBusybox(t, "--default-ulimit", "nofile=1024:2048", "--default-ulimit", "nproc=512:1024",
		"--default-shm-size", "96m", "--cgroup-parent", "/berth-admin-test", "--init",
		"--add-runtime", "wrapped="+wrapper, "--default-runtime", "wrapped")
	t.Cleanup(func() {
		// runc leaves the parent cgroup behind in every controller.
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth-admin-test")
		for _, dir := range dirs {
			_ = os.Remove(dir)
		}
	})

	assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"), "1024\n2048\n512"))
	assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -u"), "100\n512"))

	d.MustDocker(t, "run", "--name", "shm", "busybox", "sh", "-c", "df -k /dev/shm | tail -1")
	assert.Check(t, is.Equal(d.MustDocker(t, "inspect", "-f", "{{.HostConfig.ShmSize}}", "shm"), "100663296"))
	assert.Check(t, is.Contains(d.MustDocker(t, "logs", "shm"), "98304"), "/dev/shm is 96 MiB")
	d.MustDocker(t, "run", "--name", "own", "--shm-size", "8m", "busybox", "true")
	assert.Check(t, is.Equal(d.MustDocker(t, "inspect", "-f", "{{.HostConfig.ShmSize}}", "own"), "8388608"))

	out := d.MustDocker(t, "run", "--rm", "busybox", "cat", "/proc/self/cgroup")
	assert.Check(t, is.Contains(out, "/berth-admin-test/"), out)
	init := d.MustDocker(t, "run", "--rm", "busybox", "cat", "/proc/1/comm")
	assert.Check(t, init == "docker-init" || init == "tini-static", "pid 1 is the init binary, not %q", init)
	assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "--init=false", "busybox", "cat", "/proc/1/comm"), "cat"))

	b, err := os.ReadFile(wrapLog)
	assert.NilError(t, err)
	assert.Check(t, strings.Contains(string(b), "create"), "containers ran through the default runtime: %s", b)
	out = d.MustDocker(t, "info", "--format", "{{.DefaultRuntime}} {{(index .Runtimes \"wrapped\").Path}}")
	assert.Check(t, is.Equal(out, "wrapped "+wrapper))
}
