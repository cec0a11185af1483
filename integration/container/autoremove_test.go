package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"gotest.tools/v3/assert"

	"github.com/berthd/berthd/integration/internal/daemon"
)

// leftovers lists what berthd keeps of containers outside its API: record directories (including
// half-removed ones), containerd containers and RW snapshots (image layers are committed snapshots).
func leftovers(t *testing.T, d *daemon.Daemon) []string {
	t.Helper()
	var out []string
	ents, err := os.ReadDir(filepath.Join(d.Root, "containers"))
	assert.NilError(t, err)
	for _, e := range ents {
		out = append(out, "dir "+e.Name())
	}
	cli, err := containerd.New(filepath.Join(d.ExecRoot, "containerd", "containerd.sock"))
	assert.NilError(t, err)
	defer cli.Close()
	ctx := namespaces.WithNamespace(context.Background(), "berth")
	ctrs, err := cli.Containers(ctx)
	assert.NilError(t, err)
	for _, c := range ctrs {
		out = append(out, "containerd container "+c.ID())
	}
	err = cli.SnapshotService(d.MustDocker(t, "info", "--format", "{{.Driver}}")).Walk(ctx, func(_ context.Context, i snapshots.Info) error {
		if i.Kind == snapshots.KindActive {
			out = append(out, "snapshot "+i.Name)
		}
		return nil
	})
	assert.NilError(t, err)
	return out
}

// A --rm container is gone from the API when `docker run` returns (its exit code intact), and what
// containerd's teardown finishes afterwards leaves nothing behind.
func TestAutoRemoveLeavesNothing(t *testing.T) {
	d := newDaemon(t)
	for i := 0; i < 3; i++ {
		res := d.Docker(t, "run", "--rm", "-v", "/anon", "busybox", "sh", "-c", "echo hi > /anon/f; exit 7")
		assert.Equal(t, res.ExitCode, 7, res.Combined())
		assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")
		assert.Equal(t, mustDocker(t, d, "volume", "ls", "-q"), "")
	}
	mustDocker(t, d, "run", "--rm", "--network", "none", "busybox", "true")
	var left []string
	waitFor(t, 20*time.Second, "the teardowns of removed containers", func() bool {
		left = leftovers(t, d)
		return len(left) == 0
	})
	assert.Equal(t, strings.Join(left, "\n"), "")
}

// A removal interrupted after the record was set aside (a crash while containerd tore the task down) is
// finished at the next start: no container reappears, and its RW layer and directory go.
func TestAutoRemoveFinishedAtStart(t *testing.T) {
	d := newDaemon(t)
	id := mustDocker(t, d, "create", "busybox", "true")
	d.Stop(t)
	dir := filepath.Join(d.Root, "containers")
	assert.NilError(t, os.Rename(filepath.Join(dir, id), filepath.Join(dir, ".removing-"+id)))
	d.Start(t)
	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")
	assert.Equal(t, strings.Join(leftovers(t, d), "\n"), "")
}
