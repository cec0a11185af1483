package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"

	types "github.com/berthd/berthd/api/types/plugin"
	"github.com/berthd/berthd/libcontainerd/remote"
	"github.com/berthd/berthd/libcontainerd/supervisor/testutil"
	ctdtypes "github.com/berthd/berthd/libcontainerd/types"
	v2 "github.com/berthd/berthd/plugin/v2"
)

type exits struct{ ch chan string }

func (h *exits) HandleExitEvent(id string) error {
	h.ch <- id
	return nil
}

type buffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	closed bool
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func tempDir(t *testing.T, prefix string) string {
	dir, err := os.MkdirTemp("/tmp", prefix)
	assert.NilError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// busyboxRootfs makes <pdir>/rootfs with a static busybox.
func busyboxRootfs(t *testing.T, pdir string) string {
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Missing(t, "busybox-static: %v", err)
	}
	dir := filepath.Join(pdir, "rootfs")
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), b, 0o755))
	for _, l := range []string{"sh", "sleep", "echo"} {
		assert.NilError(t, os.Symlink("busybox", filepath.Join(dir, "bin", l)))
	}
	return dir
}

func newPlugin(t *testing.T, id, pdir string) *v2.Plugin {
	cfg := types.Config{
		Interface:  types.Interface{Types: []string{"docker.volumedriver/1.0"}, Socket: "p.sock"},
		Entrypoint: []string{"/bin/sh", "-c", "echo hello; echo oops >&2; exec sleep 1000"},
	}
	assert.NilError(t, v2.ValidateConfig(&cfg))
	return v2.NewFromConfig(id, "p:latest", "", cfg, pdir)
}

func TestExecutor(t *testing.T) {
	addr := testutil.StartContainerd(t)
	ctx := context.Background()
	pdir := tempDir(t, "pdir")
	busyboxRootfs(t, pdir)
	sockDir := tempDir(t, "psock")
	state := tempDir(t, "pstate")
	h := &exits{ch: make(chan string, 10)}
	newClient := func(ctx context.Context, cb ctdtypes.EventCallback) (ctdtypes.Client, error) {
		return remote.New(ctx, addr, "plugins.test", cb)
	}
	e, err := New(ctx, Config{StateDir: state}, newClient, h)
	assert.NilError(t, err)
	t.Cleanup(func() { e.Close() })

	// A random ID: runc's state dir is shared by every containerd on the host.
	id := strings.Repeat("ab", 26) + fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	t.Cleanup(func() {
		if running, _ := e.IsRunning(ctx, id); running {
			_ = e.Signal(ctx, id, syscall.SIGKILL)
			select {
			case <-h.ch:
			case <-time.After(10 * time.Second):
			}
		}
	})
	p := newPlugin(t, id, pdir)
	spec, err := p.InitSpec(v2.SpecOptions{SocketDir: sockDir, CgroupsPath: "/berth-plugins-test/" + id})
	assert.NilError(t, err)

	out, errOut := &buffer{}, &buffer{}
	assert.NilError(t, e.Create(ctx, id, spec, out, errOut))
	running, err := e.IsRunning(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, running)
	pid1, err := e.Pid(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, pid1 > 0)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "hello") || !strings.Contains(errOut.String(), "oops") {
		assert.Assert(t, time.Now().Before(deadline), "no output: %q %q", out.String(), errOut.String())
		time.Sleep(20 * time.Millisecond)
	}

	// Create replaces a task left with the same ID; the old task's exit is not reported as the new one's.
	assert.NilError(t, e.Create(ctx, id, spec, &buffer{}, &buffer{}))
	pid2, err := e.Pid(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, pid2 != pid1)
	select {
	case got := <-h.ch:
		t.Fatalf("exit of the replaced task reported for %s", got)
	case <-time.After(time.Second):
	}
	running, _ = e.IsRunning(ctx, id)
	assert.Check(t, running)

	// A second executor (a restarted daemon) reattaches.
	h2 := &exits{ch: make(chan string, 10)}
	e2, err := New(ctx, Config{StateDir: state}, newClient, h2)
	assert.NilError(t, err)
	alive, err := e2.Restore(ctx, id, &buffer{}, &buffer{})
	assert.NilError(t, err)
	assert.Check(t, alive)
	assert.NilError(t, e2.Close())
	alive, err = e.Restore(ctx, "nope", &buffer{}, &buffer{})
	assert.NilError(t, err)
	assert.Check(t, !alive)

	// A kill is reported once the task and container are gone.
	assert.NilError(t, e.Signal(ctx, id, syscall.SIGKILL))
	select {
	case got := <-h.ch:
		assert.Equal(t, got, id)
	case <-time.After(20 * time.Second):
		t.Fatal("exit not reported")
	}
	running, err = e.IsRunning(ctx, id)
	assert.NilError(t, err)
	assert.Check(t, !running)
	err = e.Signal(ctx, id, syscall.SIGTERM)
	assert.Check(t, errdefs.IsNotFound(err), err)
	_, err = os.Stat(filepath.Join(state, id))
	assert.Check(t, os.IsNotExist(err), "FIFO dir removed")
}
