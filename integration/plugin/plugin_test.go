// Package plugin holds end-to-end tests of legacy plugins: a real berthd with private plugin dirs, the
// hack/plugins/volplugin test plugin on a real socket, driven by the docker CLI.
package plugin

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

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/volume"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type volplugin struct {
	bin, sock, root, log string
	cmd                  *exec.Cmd
}

func startVolplugin(t *testing.T, socketDir string) *volplugin {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "volplugin")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/berthd/berthd/hack/plugins/volplugin").CombinedOutput()
	assert.NilError(t, err, string(out))
	dir := t.TempDir()
	vp := &volplugin{bin: bin, sock: filepath.Join(socketDir, "volplugin.sock"), root: filepath.Join(dir, "root"), log: filepath.Join(dir, "calls.log")}
	t.Cleanup(func() { vp.kill(syscall.SIGTERM) })
	vp.start(t)
	return vp
}

func (vp *volplugin) kill(sig syscall.Signal) {
	if vp.cmd != nil {
		vp.cmd.Process.Signal(sig)
		vp.cmd.Wait()
		vp.cmd = nil
	}
}

func (vp *volplugin) start(t *testing.T, extra ...string) *volplugin {
	t.Helper()
	vp.cmd = exec.Command(vp.bin, append([]string{"-socket", vp.sock, "-root", vp.root, "-log", vp.log}, extra...)...)
	vp.cmd.Stderr = os.Stderr
	assert.NilError(t, vp.cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", vp.sock); err == nil {
			c.Close()
			return vp
		}
		assert.Assert(t, time.Now().Before(deadline), "volplugin did not start")
		time.Sleep(10 * time.Millisecond)
	}
}

func (vp *volplugin) calls(t *testing.T) []string {
	f, err := os.Open(vp.log)
	if os.IsNotExist(err) {
		return nil
	}
	assert.NilError(t, err)
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestVolumePluginThroughCLI(t *testing.T) {
	d := daemon.New(t)
	vp := startVolplugin(t, d.PluginSocketDir)
	d.Start(t)

	res := d.Docker(t, "volume", "create", "-d", "volplugin", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Equal(strings.TrimSpace(res.Stdout), "v1"))
	assert.Check(t, is.Equal(count(vp.calls(t), "VolumeDriver.Create v1"), 1), "%v", vp.calls(t))

	res = d.Docker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Contains(res.Stdout, "volplugin v1"))

	res = d.Docker(t, "volume", "inspect", "--format", "{{.Driver}} {{.Mountpoint}} {{.Scope}}", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Equal(strings.TrimSpace(res.Stdout), "volplugin "+filepath.Join(vp.root, "volumes", "v1")+" local"))

	res = d.Docker(t, "info", "--format", "{{json .Plugins.Volume}}")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Contains(res.Stdout, `"volplugin"`))

	res = d.Docker(t, "volume", "rm", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	_, err := os.Stat(filepath.Join(vp.root, "volumes", "v1"))
	assert.Check(t, os.IsNotExist(err), "the plugin removed the volume's data")

	calls := vp.calls(t)
	// As dockerd: create looks for an existing volume first; ls lists; inspect asks the plugin (Get),
	// info uses what is cached; Path is never called; Activate and Capabilities happen once.
	assert.Check(t, is.DeepEqual(calls, []string{"Plugin.Activate", "VolumeDriver.Capabilities", "VolumeDriver.Get v1",
		"VolumeDriver.Create v1", "VolumeDriver.List", "VolumeDriver.Get v1", "VolumeDriver.Remove v1"}))
	assert.Check(t, is.Equal(count(calls, "Plugin.Activate"), 1), "activated once: %q", calls)
	assert.Check(t, is.Equal(count(calls, "VolumeDriver.Capabilities"), 1), "capabilities once: %q", calls)
	assert.Check(t, is.Equal(count(calls, "VolumeDriver.Remove v1"), 1), "%q", calls)
	for _, c := range calls {
		assert.Check(t, !strings.HasPrefix(c, "VolumeDriver.Path"), "Path is never needed by create/ls/inspect/rm: %q", calls)
	}

	// An unknown driver fails at once with dockerd's message (dockerd retries for ~15 s first).
	start := time.Now()
	res = d.Docker(t, "volume", "create", "-d", "nosuch", "v2")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, `error looking up volume plugin nosuch: plugin "nosuch" not found`))
	assert.Check(t, time.Since(start) < 5*time.Second, "took %v", time.Since(start))
}

func TestDeadPluginDoesNotStallVolumeLs(t *testing.T) {
	d := daemon.New(t)
	vp := startVolplugin(t, d.PluginSocketDir)
	// A socket file nobody listens on: a crashed plugin.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(d.PluginSocketDir, "dead.sock"), Net: "unix"})
	assert.NilError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
	d.Start(t)

	res := d.Docker(t, "volume", "create", "-d", "volplugin", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	for i := 0; i < 3; i++ {
		start := time.Now()
		res = d.Docker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}")
		took := time.Since(start)
		assert.Equal(t, res.ExitCode, 0, res.Combined())
		assert.Check(t, is.Contains(res.Stdout, "volplugin v1"))
		assert.Check(t, took < 10*time.Second, "volume ls took %v with a dead plugin present", took)
	}
	res = d.Docker(t, "volume", "create", "-d", "dead", "v2")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, `plugin "dead" is unavailable`), res.Combined())
	_ = vp
}

func TestRestartedPluginIsRediscovered(t *testing.T) {
	d := daemon.New(t)
	vp := startVolplugin(t, d.PluginSocketDir)
	d.Start(t)
	res := d.Docker(t, "volume", "create", "-d", "volplugin", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())

	// Crash (the socket file stays): listing still answers promptly, naming the driver in a warning.
	vp.kill(syscall.SIGKILL)
	start := time.Now()
	res = d.Docker(t, "volume", "ls", "--format", "{{.Name}}")
	assert.Check(t, time.Since(start) < 10*time.Second, "volume ls took %v", time.Since(start))
	assert.Check(t, is.Equal(res.ExitCode, 0), res.Combined())
	assert.Check(t, is.Contains(res.Stdout, "v1"), "the cached volume is still listed")
	start = time.Now()
	list, err := d.Client(t).VolumeList(context.Background(), volume.ListOptions{})
	assert.NilError(t, err)
	assert.Check(t, time.Since(start) < 5*time.Second, "GET /volumes took %v", time.Since(start))
	assert.Check(t, is.Contains(strings.Join(list.Warnings, "\n"), "volplugin"), "a warning names the dead driver: %q", list.Warnings)

	// Calls keep failing until it is marked unavailable (failing fast, retried in the background).
	for i := 0; i < 5; i++ {
		res = d.Docker(t, "volume", "inspect", "v1")
		assert.Check(t, res.ExitCode != 0, "inspected a dead plugin's volume")
	}
	assert.Check(t, is.Contains(res.Stderr, "retrying in the background"), res.Combined())

	// Started again on the same socket: the very next call uses it (dockerd keeps the dead client), without
	// waiting for the background retry.
	vp.start(t)
	res = d.Docker(t, "volume", "create", "-d", "volplugin", "v2")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Contains(res.Stdout, "volplugin v1"))
	assert.Check(t, is.Contains(res.Stdout, "volplugin v2"))
	assert.Check(t, is.Equal(count(vp.calls(t), "Plugin.Activate"), 2), "%q", vp.calls(t))
}

// TestHungPluginAfterRestartFailsWithinDeadline: berthd restarted while a plugin hangs (accepts, never
// answers). Inspecting one of its volumes fails with the plugin's deadline from daemon.json, activation
// included (it used to wait 30 s per activation attempt, twice).
func TestHungPluginAfterRestartFailsWithinDeadline(t *testing.T) {
	d := daemon.New(t)
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"plugin-timeouts": {"default": 2}}`), 0o644))
	vp := startVolplugin(t, d.PluginSocketDir)
	d.Start(t)
	res := d.Docker(t, "volume", "create", "-d", "volplugin", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	d.Stop(t)
	vp.kill(syscall.SIGKILL)
	vp.start(t, "-hang")
	d.Start(t)

	_, err := d.Client(t).VolumeInspect(context.Background(), "v1")
	assert.Assert(t, err != nil)
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Check(t, is.Contains(err.Error(), `plugin "volplugin" is unavailable`))
	assert.Check(t, is.Contains(err.Error(), "Plugin.Activate: no reply within 2s"))
	// Marked unavailable by the hung activation: the next one fails fast, with the same cause.
	res = d.Docker(t, "volume", "inspect", "v1")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "Plugin.Activate: no reply within 2s"), res.Combined())
}
