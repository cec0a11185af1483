// Package testutil starts a throw-away containerd for other packages' tests (images, layer, remote,
// plugin executor). It is test support only: nothing in the daemon imports it.
package testutil

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	"github.com/berthd/berthd/libcontainerd/supervisor"
)

// StartContainerd starts a private containerd through supervisor.Start and returns its gRPC socket path
// (no unix:// prefix; pass it to containerd.New or remote.New). It skips the test when not root or when
// containerd is not installed, and stops containerd and removes its dirs when the test ends.
//
// The state dir is made under /tmp rather than t.TempDir() because unix socket paths must stay under
// 108 bytes and test names make t.TempDir() paths long.
func StartContainerd(t testing.TB) string {
	t.Helper()
	s := Start(t, supervisor.Config{})
	return s.Address()
}

// Start is StartContainerd for tests that need the Supervisor itself (to kill or observe it). Empty
// RootDir and StateDir in cfg are filled with temporary dirs.
func Start(t testing.TB, cfg supervisor.Config) *supervisor.Supervisor {
	t.Helper()
	testenv.NeedRoot(t)
	if cfg.Binary == "" {
		testenv.NeedCommand(t, "containerd", "containerd")
	}
	if cfg.StateDir == "" {
		dir, err := os.MkdirTemp("/tmp", "ctd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		cfg.StateDir = dir
	}
	if cfg.RootDir == "" {
		// Also outside t.TempDir(): snapshot and bundle paths end up in mount options, which have
		// a page-size limit, and a test's leftovers are easier to find under /tmp.
		dir, err := os.MkdirTemp("/var/tmp", "ctd-root")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		cfg.RootDir = dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := supervisor.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Logf("stop containerd: %v", err)
		}
	})
	return s
}
