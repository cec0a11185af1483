// Package security holds end-to-end tests of container confinement and API security: seccomp, capabilities,
// masked paths, --security-opt, the daemon's security options, and authorization plugins, checked from
// inside containers that a real berthd started (real containerd, runc and docker CLI).
package security

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/volume"

	"github.com/berthd/berthd/integration/internal/daemon"
)

// status returns the fields of /proc/self/status of a process run with args (docker run --rm args...
// busybox cat /proc/self/status).
func status(t *testing.T, d *daemon.Daemon, args ...string) map[string]string {
	t.Helper()
	out := d.MustDocker(t, append(append([]string{"run", "--rm"}, args...), "busybox", "cat", "/proc/self/status")...)
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
