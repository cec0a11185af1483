package container

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// tarEntries reads a tar file into name -> body (bodies of small regular files only).
func tarEntries(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	entries := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body := ""
		if h.Typeflag == tar.TypeReg && h.Size < 256 {
			b, _ := io.ReadAll(tr)
			body = string(b)
		}
		entries[strings.TrimPrefix(h.Name, "./")] = body
	}
	return entries
}

// Resolving a user by name must not disturb the running container: copy-up, docker cp and commit keep
// working after exec -u, run -u and a healthcheck with a named USER.
func TestExecUserByNameKeepsLayerWritable(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "eu", "-u", "nobody", "--health-cmd", "true", "--health-interval", "1s",
		"busybox", "sleep", "1000")
	assert.Equal(t, mustDocker(t, d, "exec", "eu", "id", "-u"), "65534")
	assert.Equal(t, mustDocker(t, d, "exec", "-u", "root", "eu", "id", "-u"), "0")
	assert.Equal(t, mustDocker(t, d, "exec", "-u", "nobody:nogroup", "eu", "id", "-g"), "65534")
	waitFor(t, 30*1e9, "a healthcheck", func() bool {
		return mustDocker(t, d, "inspect", "-f", "{{.State.Health.Status}}", "eu") == "healthy"
	})

	mustDocker(t, d, "exec", "-u", "root", "eu", "touch", "/tmp/x")
	mustDocker(t, d, "exec", "-u", "root", "eu", "rm", "/etc/group")
	mustDocker(t, d, "exec", "-u", "root", "eu", "sh", "-c", "echo changed > /etc/passwd.new")
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "in"), []byte("copied"), 0o644))
	mustDocker(t, d, "cp", filepath.Join(dir, "in"), "eu:/etc/")
	assert.Equal(t, mustDocker(t, d, "exec", "eu", "cat", "/etc/in"), "copied")

	mustDocker(t, d, "commit", "eu", "eu:img")
	out := mustDocker(t, d, "run", "--rm", "-u", "root", "eu:img", "sh", "-c",
		"ls /tmp/x /etc/in /etc/passwd.new && test ! -e /etc/group && echo ok")
	assert.Assert(t, is.Contains(out, "ok"), out)
	// A stopped container's user is resolved from a read-only view of its layer.
	mustDocker(t, d, "rm", "-f", "eu")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "-u", "nobody", "busybox", "id", "-u"), "65534")
}

// docker export of a running container is its whole root filesystem, with what was written at run time.
func TestExportRunning(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "ex", "-v", "exvol:/data", "busybox", "sh", "-c",
		"echo runtime > /tmp/written && echo vol > /data/v && sleep 1000")
	waitFor(t, 30*1e9, "the runtime file", func() bool {
		return d.Docker(t, "exec", "ex", "test", "-e", "/data/v").ExitCode == 0
	})
	entries := exportEntries(t, d, "ex")
	assert.Equal(t, entries["tmp/written"], "runtime\n")
	_, ok := entries["bin/busybox"]
	assert.Assert(t, ok, "bin/busybox missing from the export")
	// As dockerd: the container's filesystem, not its volumes nor the kernel's pseudo-filesystems.
	_, ok = entries["data/v"]
	assert.Assert(t, !ok, "a volume's content is in the export")
	_, ok = entries["proc/self"]
	assert.Assert(t, !ok, "procfs is in the export")
	// The export did not disturb the running container.
	mustDocker(t, d, "exec", "ex", "touch", "/etc/after-export")
}

func exportEntries(t *testing.T, d *daemon.Daemon, name string) map[string]string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.tar")
	mustDocker(t, d, "export", "-o", p, name)
	f, err := os.Open(p)
	assert.NilError(t, err)
	defer f.Close()
	return tarEntries(t, f)
}
