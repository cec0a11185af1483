package container

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	containertypes "github.com/docker/docker/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestResourcesAndSecurity(t *testing.T) {
	d := newDaemon(t)
	out := mustDocker(t, d, "run", "--rm", "--init", "busybox", "ps", "-o", "comm")
	assert.Assert(t, is.Contains(out, "docker-init"), out)

	out = mustDocker(t, d, "run", "--rm", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20", "busybox", "sh", "-c",
		"cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max")
	assert.Equal(t, out, "67108864\n50000\n20")

	out = mustDocker(t, d, "run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "busybox", "grep", "CapEff", "/proc/self/status")
	assert.Equal(t, strings.Fields(out)[1], "0000000000001000")

	res := d.Docker(t, "run", "--rm", "--read-only", "busybox", "touch", "/x")
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "Read-only file system"))

	out = mustDocker(t, d, "run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn")
	assert.Equal(t, out, "100\n200")
	if _, err := os.Stat("/dev/fuse"); err == nil {
		assert.Assert(t, is.Contains(mustDocker(t, d, "run", "--rm", "--device", "/dev/fuse", "busybox", "ls", "-l", "/dev/fuse"), "10, 229"))
	}

	out = mustDocker(t, d, "run", "--rm", "--privileged", "busybox", "grep", "CapEff", "/proc/self/status")
	assert.Assert(t, strings.Fields(out)[1] != "00000000a80425fb", out)
}

func TestPauseTopStatsCpExportPrune(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "pt", "busybox", "sleep", "1000")
	mustDocker(t, d, "pause", "pt")
	assert.Assert(t, is.Contains(mustDocker(t, d, "ps", "--format", "{{.Status}}"), "(Paused)"))
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}}", "pt"), "paused")
	mustDocker(t, d, "unpause", "pt")
	assert.Assert(t, is.Contains(mustDocker(t, d, "top", "pt"), "sleep 1000"))
	assert.Assert(t, is.Contains(mustDocker(t, d, "stats", "--no-stream", "pt"), "pt"))

	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "in"), []byte("hello"), 0o644))
	mustDocker(t, d, "cp", filepath.Join(dir, "in"), "pt:/tmp/")
	assert.Equal(t, mustDocker(t, d, "exec", "pt", "cat", "/tmp/in"), "hello")
	mustDocker(t, d, "cp", "pt:/etc/passwd", filepath.Join(dir, "pw"))
	b, err := os.ReadFile(filepath.Join(dir, "pw"))
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(string(b), "root:"))

	mustDocker(t, d, "stop", "-t", "0", "pt")
	mustDocker(t, d, "cp", "pt:/tmp/in", filepath.Join(dir, "out"))
	b, _ = os.ReadFile(filepath.Join(dir, "out"))
	assert.Equal(t, string(b), "hello")
	mustDocker(t, d, "export", "-o", filepath.Join(dir, "x.tar"), "pt")
	// The export is the container's whole filesystem, names relative to its root, with what was written
	// into it.
	xf, err := os.Open(filepath.Join(dir, "x.tar"))
	assert.NilError(t, err)
	defer xf.Close()
	entries := map[string]string{}
	tr := tar.NewReader(xf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body := ""
		if h.Typeflag == tar.TypeReg && h.Size < 64 {
			b, _ := io.ReadAll(tr)
			body = string(b)
		}
		entries[strings.TrimPrefix(h.Name, "./")] = body
	}
	assert.Equal(t, entries["tmp/in"], "hello")
	_, ok := entries["bin/busybox"]
	assert.Assert(t, ok, "bin/busybox missing from the export")

	out := mustDocker(t, d, "container", "prune", "-f")
	assert.Assert(t, is.Contains(out, "Deleted Containers"))
	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")
}

func TestDiffAndCommit(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "--name", "dc", "busybox", "sh", "-c", "echo committed > /c; rm /bin/ls; echo x >> /etc/passwd")
	out := mustDocker(t, d, "diff", "dc")
	for _, want := range []string{"A /c", "D /bin/ls", "C /etc/passwd"} {
		assert.Assert(t, is.Contains(out, want), out)
	}
	assert.Assert(t, !strings.Contains(out, "/etc/hosts"), out)
	mustDocker(t, d, "commit", "-c", `CMD ["cat","/c"]`, "-m", "msg", "dc", "mine:v1")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "mine:v1"), "committed")
	res := d.Docker(t, "run", "--rm", "mine:v1", "ls")
	assert.Equal(t, res.ExitCode, 127)
	mustDocker(t, d, "rm", "dc")

	// A directory replaced wholesale becomes opaque in the layer, and hard links stay links.
	mustDocker(t, d, "run", "--name", "dc2", "busybox", "sh", "-c", "rm -rf /home && mkdir /home && echo y > /home/new && ln /home/new /home/link")
	out = mustDocker(t, d, "diff", "dc2")
	assert.Assert(t, is.Contains(out, "C /home"), out)
	assert.Assert(t, is.Contains(out, "A /home/new"), out)
	assert.Assert(t, !strings.Contains(out, ".wh."), out)
	mustDocker(t, d, "commit", "dc2", "mine:v2")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "mine:v2", "sh", "-c", "ls /home | tr '\\n' ' '; stat -c %h /home/new"), "link new 2")
}

func TestImageVolumeAndAttach(t *testing.T) {
	d := newDaemon(t)
	// An image with a VOLUME whose content is copied into the new anonymous volume.
	mustDocker(t, d, "run", "--name", "vsrc", "busybox", "sh", "-c", "mkdir /data && echo seeded > /data/f")
	mustDocker(t, d, "commit", "-c", "VOLUME /data", "vsrc", "withvol:1")
	mustDocker(t, d, "rm", "vsrc")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "withvol:1", "cat", "/data/f"), "seeded")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "-v", "nv:/data", "withvol:1", "cat", "/data/f"), "seeded")
	// --rm removed the anonymous volume, kept the named one.
	assert.Equal(t, mustDocker(t, d, "volume", "ls", "-q"), "nv")

	// docker attach to a running container sees its output and its exit code.
	mustDocker(t, d, "run", "-d", "--name", "att", "busybox", "sh", "-c", "sleep 1; echo attached-out; exit 4")
	res := d.Docker(t, "attach", "att")
	assert.Equal(t, res.ExitCode, 4, res.Combined())
	assert.Equal(t, res.Stdout, "attached-out\n")
}

func TestUpdate(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "up1", "busybox", "sleep", "1000")
	mustDocker(t, d, "update", "--memory", "32m", "--memory-swap", "64m", "--restart", "always", "up1")
	assert.Equal(t, mustDocker(t, d, "exec", "up1", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"), "33554432")
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Memory}}", "up1"), "always 33554432")
	res := d.Docker(t, "update", "--restart", "bogus", "up1")
	assert.Assert(t, res.ExitCode != 0)
	mustDocker(t, d, "rm", "-f", "up1")

	// A live update maps memory as create does: no swap setting means as much swap again (dockerd's default).
	mustDocker(t, d, "run", "-d", "--name", "up2", "busybox", "sleep", "1000")
	mustDocker(t, d, "update", "--memory", "48m", "up2")
	assert.Equal(t, mustDocker(t, d, "exec", "up2", "cat", "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"), "100663296")
	mustDocker(t, d, "rm", "-f", "up2")
}

func TestHealthcheck(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms",
		"--health-retries", "2", "busybox", "sh", "-c", "sleep 0.5; touch /tmp/ok; sleep 1000")
	waitFor(t, 10*time.Second, "healthy", func() bool {
		return strings.Contains(d.Docker(t, "ps", "--format", "{{.Status}}").Stdout, "(healthy)")
	})
	mustDocker(t, d, "exec", "hc", "rm", "/tmp/ok")
	waitFor(t, 10*time.Second, "unhealthy", func() bool {
		return d.Docker(t, "inspect", "-f", "{{.State.Health.Status}}", "hc").Stdout == "unhealthy\n"
	})
	assert.Assert(t, mustDocker(t, d, "ps", "--filter", "health=unhealthy", "-q") != "")
	mustDocker(t, d, "rm", "-f", "hc")
}

func TestLogRotation(t *testing.T) {
	d := newDaemon(t)
	res := d.Docker(t, "run", "--rm", "--log-opt", "bogus=1", "busybox", "true")
	assert.Assert(t, is.Contains(res.Stderr, "unknown log opt 'bogus'"), res.Combined())
	mustDocker(t, d, "run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done")
	out := mustDocker(t, d, "logs", "--tail", "1", "rot")
	assert.Equal(t, out, "line199")
	n := len(strings.Fields(mustDocker(t, d, "logs", "rot")))
	assert.Assert(t, n > 10 && n < 200, n)
	mustDocker(t, d, "rm", "rot")
}

// docker cp into a container never writes outside the destination: "..", absolute names and symlinks in
// the archive resolve inside it; a broken tar is a 400; hard links copied out stay links.
func TestCopyConfinedAndLinks(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	mustDocker(t, d, "create", "--name", "cpc", "busybox")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		assert.NilError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	add(&tar.Header{Name: "../../../../berthd-escape-1"}, "x")
	add(&tar.Header{Name: "/berthd-escape-2"}, "x")
	add(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"}, "")
	add(&tar.Header{Name: "l/berthd-escape-3"}, "x")
	add(&tar.Header{Name: ".wh.kept"}, "literal")
	assert.NilError(t, tw.Close())
	assert.NilError(t, c.CopyToContainer(ctx, "cpc", "/tmp", &buf, containertypes.CopyToContainerOptions{}))
	for _, p := range []string{"/berthd-escape-1", "/berthd-escape-2", "/berthd-escape-3"} {
		_, err := os.Lstat(p)
		assert.Assert(t, os.IsNotExist(err), "%s written on the host", p)
	}
	dir := t.TempDir()
	mustDocker(t, d, "cp", "cpc:/tmp", filepath.Join(dir, "tmp"))
	for _, p := range []string{"berthd-escape-1", "berthd-escape-2", "berthd-escape-3", ".wh.kept"} {
		_, err := os.Stat(filepath.Join(dir, "tmp", p))
		assert.NilError(t, err, "%s not extracted inside the destination", p)
	}

	err := c.CopyToContainer(ctx, "cpc", "/tmp", strings.NewReader(strings.Repeat("not a tar ", 200)), containertypes.CopyToContainerOptions{})
	assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%v", err)

	// Hard links survive a copy out.
	mustDocker(t, d, "run", "--name", "cph", "busybox", "sh", "-c", "mkdir /h && echo y > /h/a && ln /h/a /h/b")
	rc, _, err := c.CopyFromContainer(ctx, "cph", "/h")
	assert.NilError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		if h.Typeflag == tar.TypeLink {
			links[h.Name] = h.Linkname
		}
	}
	assert.Equal(t, len(links), 1, "%v", links)
}
