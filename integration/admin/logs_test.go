package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const chatty = `i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done`

// checkAllLines: `docker logs` returns what survived rotation, in order and ending with the last line;
// --tail counts from the end.
func checkLines(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Assert(t, len(lines) > 10 && len(lines) < 3000, "%d lines survived", len(lines))
	var first int
	_, err := fmt.Sscanf(lines[0], "line-%d", &first)
	assert.NilError(t, err, lines[0])
	for i, l := range lines {
		assert.Assert(t, is.Equal(l, fmt.Sprintf("line-%d", first+i)))
	}
	assert.Check(t, is.Equal(lines[len(lines)-1], "line-2999"))
}

// TestLogRotationBySizeAndCount: the daemon's --log-opt applies to new containers (and shows in inspect);
// a chatty container's json-file log rotates at max-size and keeps max-file files; logs reads across them.
func TestLogRotationBySizeAndCount(t *testing.T) {
	d := daemon.NewWithBusybox(t, "--log-opt", "max-size=2k", "--log-opt", "max-file=3")
	d.MustDocker(t, "run", "--name", "chatty", "busybox", "sh", "-c", chatty)
	id := d.MustDocker(t, "inspect", "-f", "{{.Id}}", "chatty")
	assert.Check(t, is.Equal(d.MustDocker(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", "chatty"),
		`json-file {"max-file":"3","max-size":"2k"}`))
	dir := filepath.Join(d.Root, "containers", id)
	base := filepath.Join(dir, id+"-json.log")
	for _, f := range []string{base, base + ".1", base + ".2"} {
		fi, err := os.Stat(f)
		assert.Assert(t, err, f)
		assert.Check(t, fi.Size() <= 2000, "%s has %d bytes", f, fi.Size())
	}
	_, err := os.Stat(base + ".3")
	assert.Check(t, os.IsNotExist(err), "max-file=3 keeps three files")
	assert.Check(t, is.Equal(d.MustDocker(t, "inspect", "-f", "{{.LogPath}}", "chatty"), base))
	checkLines(t, d.MustDocker(t, "logs", "chatty"))
	assert.Check(t, is.Equal(d.MustDocker(t, "logs", "--tail", "2", "chatty"), "line-2998\nline-2999"))

	// The container's own options win over the daemon's; compress gzips rotated files.
	d.MustDocker(t, "run", "--name", "gz", "--log-opt", "max-file=2", "--log-opt", "compress=true", "busybox", "sh", "-c", chatty)
	id = d.MustDocker(t, "inspect", "-f", "{{.Id}}", "gz")
	base = filepath.Join(d.Root, "containers", id, id+"-json.log")
	_, err = os.Stat(base + ".1.gz")
	assert.Check(t, err)
	_, err = os.Stat(base + ".2.gz")
	assert.Check(t, os.IsNotExist(err))
	checkLines(t, d.MustDocker(t, "logs", "gz"))

	// max-file without max-size is accepted (dockerd): nothing rotates.
	assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "--log-opt", "max-size=0", "--log-opt", "max-file=5", "busybox", "echo", "ok"), "ok"))
	res := d.Docker(t, "run", "--rm", "--log-opt", "compress=true", "--log-opt", "max-size=", "busybox", "true")
	assert.Check(t, res.ExitCode != 0)
	res = d.Docker(t, "run", "--rm", "--log-opt", "bogus=1", "busybox", "true")
	assert.Check(t, is.Contains(res.Stderr, "unknown log opt 'bogus' for json-file log driver"), res.Combined())
}

// TestLocalLogDriver: the local driver rotates (compressed, its own defaults) and `docker logs` works with
// tail, since/until and follow; it is the daemon default when --log-driver local.
func TestLocalLogDriver(t *testing.T) {
	d := daemon.NewWithBusybox(t, "--log-driver", "local")
	d.MustDocker(t, "run", "--name", "loc", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", "busybox", "sh", "-c", chatty)
	id := d.MustDocker(t, "inspect", "-f", "{{.Id}}", "loc")
	assert.Check(t, is.Equal(d.MustDocker(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}}|{{.LogPath}}", "loc"), "local|"), "no LogPath for local, as dockerd")
	base := filepath.Join(d.Root, "containers", id, "local-logs", "container.log")
	for _, f := range []string{base, base + ".1.gz", base + ".2.gz"} {
		_, err := os.Stat(f)
		assert.Check(t, err, f)
	}
	checkLines(t, d.MustDocker(t, "logs", "loc"))
	assert.Check(t, is.Equal(d.MustDocker(t, "logs", "--tail", "1", "loc"), "line-2999"))
	assert.Check(t, is.Equal(d.MustDocker(t, "logs", "--until", "2000-01-01T00:00:00Z", "loc"), ""))
	assert.Check(t, is.Contains(d.MustDocker(t, "logs", "--since", "2000-01-01T00:00:00Z", "loc"), "line-2999"))

	res := d.Docker(t, "run", "--rm", "--log-driver", "local", "--log-opt", "labels=a", "busybox", "true")
	assert.Check(t, is.Contains(res.Stderr, "unknown log opt 'labels' for log driver local"), res.Combined())

	// follow: lines written while following arrive, and follow ends with the container.
	d.MustDocker(t, "run", "-d", "--name", "slow", "busybox", "sh", "-c", "echo one; sleep 2; echo two")
	start := time.Now()
	assert.Check(t, is.Equal(d.MustDocker(t, "logs", "-f", "slow"), "one\ntwo"))
	assert.Check(t, time.Since(start) < 30*time.Second)
}

// TestLogsDetails: the labels/env/tag log-opts add attributes that `docker logs --details` prints, as dockerd
// (sorted k=v pairs, then a space; a lone space without attributes).
func TestLogsDetails(t *testing.T) {
	d := daemon.NewWithBusybox(t)
	d.MustDocker(t, "run", "--name", "det", "--label", "a=1", "--label", "b=2", "-e", "E1=x",
		"--log-opt", "labels=b,a", "--log-opt", "env=E1", "--log-opt", "tag={{.Name}}", "busybox", "sh", "-c", "echo hi; echo there")
	res := d.Docker(t, "logs", "--details", "det")
	assert.Check(t, is.Equal(res.Stdout, "E1=x,a=1,b=2,tag=det hi\nE1=x,a=1,b=2,tag=det there\n"))
	assert.Check(t, is.Equal(d.MustDocker(t, "logs", "det"), "hi\nthere"), "without --details the attributes stay hidden")
	d.MustDocker(t, "run", "--name", "plain", "busybox", "echo", "plain")
	res = d.Docker(t, "logs", "--details", "plain")
	assert.Check(t, is.Equal(res.Stdout, " plain\n"))
}
