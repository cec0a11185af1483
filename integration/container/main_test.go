// Package container holds end-to-end tests of containers: berthd with its own containerd, driven by the
// real docker CLI and the moby Go client, with a busybox image built offline by hack/mkimage.
package container

import (
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
)

// newDaemon starts a berthd with the busybox image loaded.
func newDaemon(t *testing.T, extra ...string) *daemon.Daemon {
	t.Helper()
	return daemon.NewWithBusybox(t, extra...)
}

func loadBusybox(t *testing.T, d *daemon.Daemon) {
	t.Helper()
	d.LoadBusybox(t)
}

func mustDocker(t *testing.T, d *daemon.Daemon, args ...string) string {
	t.Helper()
	return d.MustDocker(t, args...)
}

var waitFor = daemon.WaitFor
