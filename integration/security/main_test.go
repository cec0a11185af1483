// Package security holds end-to-end tests of container confinement and API security: seccomp, capabilities,
// masked paths, --security-opt, the daemon's security options, and authorization plugins, checked from
// inside containers that a real berthd started (real containerd, runc and docker CLI).
package security

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/volume"

	"github.com/berthd/berthd/hack/mkimage"
	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
)

// newDaemon starts a berthd with extra flags and the busybox image loaded.
func newDaemon(t *testing.T, extra ...string) *daemon.Daemon {
	t.Helper()
	d := daemon.New(t)
	d.Start(t, extra...)
	loadBusybox(t, d)
	return d
}

func loadBusybox(t *testing.T, d *daemon.Daemon) {
	t.Helper()
	img, err := mkimage.BusyboxImage("busybox:latest")
	assert.NilError(t, err)
	var b bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&b, []mkimage.Image{img}))
	res := d.DockerStdin(t, b.Bytes(), "load")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
}

func mustDocker(t *testing.T, d *daemon.Daemon, args ...string) string {
	t.Helper()
	res := d.Docker(t, args...)
	assert.Equal(t, res.ExitCode, 0, "docker %v: %s", args, res.Combined())
	return strings.TrimSpace(res.Stdout)
}

// status returns the fields of /proc/self/status of a process run with args (docker run --rm args...
// busybox cat /proc/self/status).
func status(t *testing.T, d *daemon.Daemon, args ...string) map[string]string {
	t.Helper()
	out := mustDocker(t, d, append(append([]string{"run", "--rm"}, args...), "busybox", "cat", "/proc/self/status")...)
	return parseStatus(out)
}

func parseStatus(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func volumeCreate(name string) volume.CreateOptions { return volume.CreateOptions{Name: name} }

// rawStatus sends one API request over the daemon's socket and returns status and body.
func rawStatus(t *testing.T, d *daemon.Daemon, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berthd"+path, strings.NewReader(body))
	assert.NilError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.HTTPClient().Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
