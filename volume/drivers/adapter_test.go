package drivers

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/plugin/store"
	v1 "github.com/berthd/berthd/plugin/v1"
	"github.com/berthd/berthd/volume"
	"github.com/berthd/berthd/volume/drivers/testsuite"
)

// buildVolplugin builds hack/plugins/volplugin into t.TempDir(); the Go build cache makes every build
// after the first a link step.
func buildVolplugin(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(t.TempDir(), "volplugin")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/berthd/berthd/hack/plugins/volplugin").CombinedOutput()
	assert.NilError(t, err, string(out))
	return bin
}

type volplugin struct {
	t    *testing.T
	bin  string
	sock string
	root string
	log  string
	cmd  *exec.Cmd
}

func newVolplugin(t *testing.T, bin, socketDir string) *volplugin {
	d := t.TempDir()
	vp := &volplugin{t: t, bin: bin, sock: filepath.Join(socketDir, "volplugin.sock"), root: filepath.Join(d, "root"), log: filepath.Join(d, "calls.log")}
	vp.start()
	t.Cleanup(vp.stop)
	return vp
}

func (vp *volplugin) start() {
	vp.t.Helper()
	vp.cmd = exec.Command(vp.bin, "-socket", vp.sock, "-root", vp.root, "-log", vp.log)
	vp.cmd.Stderr = os.Stderr
	assert.NilError(vp.t, vp.cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A crashed instance leaves its socket file, which refuses connections: wait for one that accepts.
		if c, err := net.Dial("unix", vp.sock); err == nil {
			c.Close()
			return
		}
		assert.Assert(vp.t, time.Now().Before(deadline), "volplugin did not create its socket")
		time.Sleep(10 * time.Millisecond)
	}
}

// kill is a crash: SIGKILL leaves the socket file behind.
func (vp *volplugin) kill() {
	if vp.cmd != nil && vp.cmd.Process != nil {
		vp.cmd.Process.Signal(syscall.SIGKILL)
		vp.cmd.Wait()
		vp.cmd = nil
	}
}

func (vp *volplugin) stop() {
	if vp.cmd != nil && vp.cmd.Process != nil {
		vp.cmd.Process.Signal(syscall.SIGTERM)
		vp.cmd.Wait()
		vp.cmd = nil
	}
}

func (vp *volplugin) calls() []string {
	f, err := os.Open(vp.log)
	if os.IsNotExist(err) {
		return nil
	}
	assert.NilError(vp.t, err)
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

// since returns the calls logged after the first n.
func (vp *volplugin) since(n int) []string {
	c := vp.calls()
	if len(c) < n {
		return nil
	}
	return c[n:]
}

func pluginStore(t *testing.T, socketDir string, timeouts v1.Timeouts) *store.Store {
	s := store.New(store.Config{Legacy: v1.Config{SocketDir: socketDir, Timeouts: timeouts, Cooldown: 300 * time.Millisecond}})
	t.Cleanup(s.Close)
	return s
}

func TestVolpluginCallSequence(t *testing.T) {
	ctx := context.Background()
	bin := buildVolplugin(t)
	socketDir := t.TempDir()
	vp := newVolplugin(t, bin, socketDir)
	ds := newStore(t, pluginStore(t, socketDir, v1.Timeouts{}), NewPluginAdapter)

	// docker volume create -d volplugin v1
	d, err := ds.CreateDriver(ctx, "volplugin")
	assert.NilError(t, err)
	v, err := d.Create(ctx, "v1", map[string]string{"size": "1"})
	assert.NilError(t, err)
	assert.Equal(t, v.DriverName(), "volplugin")
	assert.DeepEqual(t, vp.calls(), []string{"Plugin.Activate", "VolumeDriver.Capabilities", "VolumeDriver.Create v1"})

	// docker volume ls
	n := len(vp.calls())
	all, err := ds.GetAllDrivers(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(all), 1)
	vols, err := all[0].List(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 1)
	assert.Equal(t, vols[0].Name(), "v1")
	assert.Equal(t, vols[0].Path(), filepath.Join(vp.root, "volumes", "v1"), "mountpoint cached from List")
	assert.DeepEqual(t, vp.since(n), []string{"VolumeDriver.List"})
	assert.Equal(t, v.Path(), vols[0].Path(), "the volume made by Create learns its path from List")

	// docker volume inspect v1
	n = len(vp.calls())
	d, err = ds.GetDriver(ctx, "volplugin")
	assert.NilError(t, err)
	got, err := d.Get(ctx, "v1")
	assert.NilError(t, err)
	created, _ := got.CreatedAt()
	assert.Assert(t, !created.IsZero())
	assert.DeepEqual(t, got.Status(), map[string]any{"driver": "volplugin"})
	assert.DeepEqual(t, vp.since(n), []string{"VolumeDriver.Get v1"})

	// A container mount and unmount.
	n = len(vp.calls())
	mp, err := got.Mount(ctx, "id1")
	assert.NilError(t, err)
	assert.Equal(t, mp, filepath.Join(vp.root, "volumes", "v1"))
	assert.NilError(t, got.Unmount(ctx, "id1"))
	assert.DeepEqual(t, vp.since(n), []string{"VolumeDriver.Mount v1", "VolumeDriver.Unmount v1"})

	// docker volume rm v1
	n = len(vp.calls())
	d, err = ds.GetDriver(ctx, "volplugin")
	assert.NilError(t, err)
	assert.NilError(t, ds.ReleaseDriver(ctx, "volplugin"))
	assert.NilError(t, d.Remove(ctx, got))
	assert.DeepEqual(t, vp.since(n), []string{"VolumeDriver.Remove v1"})
	_, err = d.Get(ctx, "v1")
	assert.Assert(t, errdefs.IsNotFound(err), "%v", err)

	// Errors from the plugin carry its message.
	_, err = d.Create(ctx, "bad", map[string]string{"fail": "disk full"})
	assert.Error(t, err, "VolumeDriver.Create: create failed as asked: disk full")

	for _, c := range vp.calls() {
		assert.Assert(t, !strings.HasPrefix(c, "VolumeDriver.Path"), "Path must not be called: %v", vp.calls())
	}
}

func TestAdapterContract(t *testing.T) {
	bin := buildVolplugin(t)
	testsuite.Run(t, func(t *testing.T) volume.Driver {
		socketDir := t.TempDir()
		newVolplugin(t, bin, socketDir)
		p, err := pluginStore(t, socketDir, v1.Timeouts{}).Lookup(context.Background(), "volplugin", getter.VolumeDriver)
		assert.NilError(t, err)
		return NewPluginAdapter("volplugin", p)
	})
}

func TestPluginRestartRemountsLiveMounts(t *testing.T) {
	ctx := context.Background()
	bin := buildVolplugin(t)
	socketDir := t.TempDir()
	vp := newVolplugin(t, bin, socketDir)
	ds := newStore(t, pluginStore(t, socketDir, v1.Timeouts{}), NewPluginAdapter)
	d, err := ds.CreateDriver(ctx, "volplugin")
	assert.NilError(t, err)
	v, err := d.Create(ctx, "live", nil)
	assert.NilError(t, err)
	_, err = v.Mount(ctx, "c1")
	assert.NilError(t, err)
	assert.DeepEqual(t, d.(*pluginDriver).LiveMounts(), []string{"live/c1"})

	// Crash: while it is down, calls fail within a bounded time, as Unavailable.
	vp.kill()
	start := time.Now()
	_, err = d.List(ctx)
	assert.Assert(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Assert(t, time.Since(start) < 5*time.Second, "took %v", time.Since(start))

	// Started again on the same socket: the next call re-activates it, and the live mount is mounted
	// again on the new instance.
	n := len(vp.calls())
	vp.start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = d.List(ctx)
		if err == nil {
			break
		}
		assert.Assert(t, time.Now().Before(deadline), "plugin not re-discovered: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	for !contains(vp.since(n), "VolumeDriver.Mount live") {
		assert.Assert(t, time.Now().Before(deadline), "live mount not mounted again: %v", vp.since(n))
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, vp.since(n)[0], "Plugin.Activate")
	assert.Equal(t, count(vp.calls(), "Plugin.Activate"), 2)
	assert.Equal(t, count(vp.calls(), "VolumeDriver.Capabilities"), 1, "capabilities asked once per driver")

	// After Unmount, a further restart mounts nothing.
	assert.NilError(t, v.Unmount(ctx, "c1"))
	assert.Equal(t, len(d.(*pluginDriver).LiveMounts()), 0)
	vp.stop()
	n = len(vp.calls())
	vp.start()
	_, err = d.List(ctx)
	assert.NilError(t, err)
	time.Sleep(200 * time.Millisecond)
	assert.DeepEqual(t, vp.since(n), []string{"Plugin.Activate", "VolumeDriver.List"})
}

func contains(list []string, s string) bool { return count(list, s) > 0 }

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
