package plugin

// End-to-end tests of managed (v2) plugins: hack/plugins/volplugin built statically into a plugin rootfs,
// created and enabled through the docker CLI, run by berthd as a containerd task.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const managedConfig = `{
  "Description": "berthd test volume plugin",
  "Documentation": "hack/plugins/volplugin",
  "Interface": {"Types": ["docker.volumedriver/1.0"], "Socket": "volplugin.sock"},
  "Entrypoint": ["/volplugin", "-socket", "/run/docker/plugins/volplugin.sock", "-root", "/data", "-log", "/data/calls.log"],
  "PropagatedMount": "/data",
  "Network": {"Type": ""},
  "Env": [{"Name": "DEBUG", "Description": "unused", "Settable": ["value"], "Value": "0"}],
  "Args": {"Name": "args", "Description": "extra flags", "Settable": ["value"], "Value": []}
}`

// buildManagedPlugin makes a `docker plugin create` directory: config.json and a rootfs holding a static
// volplugin and the directories it needs.
func buildManagedPlugin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"data", "tmp", "run/docker/plugins", "etc", "proc", "sys", "dev"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(rootfs, "volplugin"), "github.com/berthd/berthd/hack/plugins/volplugin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(managedConfig), 0o644))
	return dir
}

type pluginObj struct {
	ID       string `json:"Id"`
	Name     string
	Enabled  bool
	Settings struct{ Env, Args []string }
}

func inspectPlugin(t *testing.T, d *daemon.Daemon, name string) pluginObj {
	t.Helper()
	res := d.Docker(t, "plugin", "inspect", name)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	var ps []pluginObj
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout), &ps))
	assert.Assert(t, is.Len(ps, 1))
	return ps[0]
}

// pluginPid finds the plugin's process: the volplugin in the plugin's cgroup (named by its ID).
func pluginPid(d *daemon.Daemon, id string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if !strings.HasPrefix(string(cmdline), "/volplugin\x00") {
			continue
		}
		if cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup")); err == nil && strings.Contains(string(cg), id) {
			return pid
		}
	}
	return 0
}

// reapPlugins returns a list of plugin IDs whose processes are killed when the test ends, after the
// daemon's teardown: a plugin outlives a crashed berthd (and its killed shim), and must not outlive the
// test. Call it before daemon.New so that its cleanup runs last.
func reapPlugins(t *testing.T) *[]string {
	ids := &[]string{}
	t.Cleanup(func() {
		for _, id := range *ids {
			if pid := pluginPid(nil, id); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return ids
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	daemon.WaitFor(t, timeout, what, cond)
}

func apiStatus(t *testing.T, d *daemon.Daemon, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berthd/v1.45"+path, nil)
	assert.NilError(t, err)
	resp, err := d.HTTPClient().Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	var body struct{ Message string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Message
}

func TestManagedVolumePlugin(t *testing.T) {
	reaped := reapPlugins(t)
	d := daemon.New(t)
	d.Start(t)
	src := buildManagedPlugin(t)

	res := d.Docker(t, "plugin", "create", "vp", src)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "create", "vp", src)
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "already exists"))

	p := inspectPlugin(t, d, "vp")
	*reaped = append(*reaped, p.ID)
	assert.Equal(t, p.Name, "vp:latest")
	assert.Assert(t, !p.Enabled)
	assert.DeepEqual(t, p.Settings.Env, []string{"DEBUG=0"})
	assert.Assert(t, is.Len(p.ID, 64))
	assert.Equal(t, inspectPlugin(t, d, p.ID[:10]).ID, p.ID)

	res = d.Docker(t, "plugin", "set", "vp", "DEBUG=1", "args=-scope local")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "set", "vp", "NOPE=1")
	assert.Assert(t, is.Contains(res.Stderr, `setting "NOPE" not found in the plugin configuration`))
	p = inspectPlugin(t, d, "vp")
	assert.DeepEqual(t, p.Settings.Env, []string{"DEBUG=1"})
	assert.DeepEqual(t, p.Settings.Args, []string{"-scope", "local"})

	res = d.Docker(t, "plugin", "enable", "vp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Assert(t, inspectPlugin(t, d, "vp").Enabled)
	res = d.Docker(t, "plugin", "enable", "vp")
	assert.Assert(t, res.ExitCode != 0)
	res = d.Docker(t, "plugin", "set", "vp", "DEBUG=2")
	assert.Assert(t, is.Contains(res.Stderr, "cannot set on an active plugin"))

	res = d.Docker(t, "plugin", "ls", "--format", "{{.Name}} {{.Enabled}}")
	assert.Equal(t, strings.TrimSpace(res.Stdout), "vp:latest true")
	res = d.Docker(t, "plugin", "ls", "-q", "--filter", "enabled=false")
	assert.Equal(t, strings.TrimSpace(res.Stdout), "")
	res = d.Docker(t, "plugin", "ls", "--format", "{{.Name}}", "--filter", "capability=volumedriver")
	assert.Equal(t, strings.TrimSpace(res.Stdout), "vp:latest")
	code, _ := apiStatus(t, d, "GET", `/plugins?filters={"bogus":{"x":true}}`)
	assert.Equal(t, code, 400)

	// Volumes through the managed plugin; paths the plugin reports map to the host.
	res = d.Docker(t, "volume", "create", "-d", "vp:latest", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "inspect", "--format", "{{.Driver}} {{.Mountpoint}}", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	pm := filepath.Join(d.Root, "plugins", p.ID, "propagated-mount")
	// Inspect asks the plugin (Get): the mountpoint is the host view of the plugin's path.
	assert.Equal(t, strings.TrimSpace(res.Stdout), "vp:latest "+filepath.Join(pm, "volumes", "v1"))
	_, err := os.Stat(filepath.Join(pm, "volumes", "v1"))
	assert.NilError(t, err, "the plugin's volume directory is visible on the host")
	res = d.Docker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}")
	assert.Assert(t, is.Contains(res.Stdout, "vp:latest v1"))
	res = d.Docker(t, "volume", "create", "-d", "vp", "v1b")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "rm", "v1b")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	// The driver of a managed plugin is cached like a legacy one: its Capabilities are asked once, not
	// on every lookup (create, inspect, ls and rm each looked it up).
	calls, err := os.ReadFile(filepath.Join(pm, "calls.log"))
	assert.NilError(t, err)
	assert.Equal(t, strings.Count(string(calls), "VolumeDriver.Capabilities"), 1, string(calls))

	// In use: disable and rm are refused with 409.
	code, msg := apiStatus(t, d, "POST", "/plugins/vp/disable")
	assert.Equal(t, code, 409, msg)
	assert.Assert(t, is.Contains(msg, "plugin vp:latest is in use by volumes v1"))
	code, msg = apiStatus(t, d, "DELETE", "/plugins/vp")
	assert.Equal(t, code, 409, msg)
	res = d.Docker(t, "plugin", "disable", "vp")
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "in use"))

	// A plugin task that dies while enabled is started again.
	pid := pluginPid(d, p.ID)
	assert.Assert(t, pid > 0, "plugin process not found")
	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, "the plugin to be restarted", 60*time.Second, func() bool {
		np := pluginPid(d, p.ID)
		return np > 0 && np != pid
	})
	waitFor(t, "the restarted plugin to answer", 30*time.Second, func() bool {
		return d.Docker(t, "volume", "create", "-d", "vp:latest", "v2").ExitCode == 0
	})

	assertPluginEvents(t, d, "create", "enable")

	// A broken store entry is quarantined, never fatal.
	broken := filepath.Join(d.Root, "plugins", strings.Repeat("ab", 32))
	assert.NilError(t, os.MkdirAll(broken, 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(broken, "config.json"), []byte("{"), 0o600))

	// After a daemon restart the plugin runs again and its volumes are usable.
	d.Restart(t)
	assert.Assert(t, inspectPlugin(t, d, "vp").Enabled)
	assert.Assert(t, pluginPid(d, p.ID) > 0)
	_, err = os.Stat(broken)
	assert.Assert(t, os.IsNotExist(err), "broken entry left in place")
	assert.Assert(t, is.Contains(d.Log(), "quarantined"))
	res = d.Docker(t, "volume", "inspect", "--format", "{{.Driver}}", "v1", "v2")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "create", "-d", "vp:latest", "v3")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	waitFor(t, "restored volumes to hold the plugin", 30*time.Second, func() bool {
		code, _ := apiStatus(t, d, "POST", "/plugins/vp/disable")
		return code == 409
	})

	for _, v := range []string{"v1", "v2", "v3"} {
		res = d.Docker(t, "volume", "rm", v)
		assert.Equal(t, res.ExitCode, 0, res.Combined())
	}
	code, msg = apiStatus(t, d, "DELETE", "/plugins/vp")
	assert.Equal(t, code, 409, msg)
	assert.Assert(t, is.Contains(msg, "is enabled"))
	res = d.Docker(t, "plugin", "disable", "vp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	waitFor(t, "the plugin process to exit", 30*time.Second, func() bool { return pluginPid(d, p.ID) == 0 })
	res = d.Docker(t, "plugin", "rm", "vp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "ls", "-q")
	assert.Equal(t, strings.TrimSpace(res.Stdout), "")
	_, err = os.Stat(filepath.Join(d.Root, "plugins", p.ID))
	assert.Assert(t, os.IsNotExist(err))

	assertPluginEvents(t, d, "disable", "remove")
}

// assertPluginEvents checks the plugin events since the daemon started (the event log is in memory).
func assertPluginEvents(t *testing.T, d *daemon.Daemon, want ...string) {
	t.Helper()
	res := d.Docker(t, "events", "--since", "0", "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "type=plugin", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	for _, a := range want {
		assert.Assert(t, is.Contains(res.Stdout, a+" vp:latest"), "events: %s", res.Stdout)
	}
}

func TestManagedPluginCreateErrors(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	dir := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755))
	res := d.Docker(t, "plugin", "create", "nocfg", dir)
	assert.Assert(t, res.ExitCode != 0)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"Interface":{"Types":["docker.volumedriver/1.0"]}}`), 0o644))
	res = d.Docker(t, "plugin", "create", "bad", dir)
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "invalid plugin config"))
	code, msg := apiStatus(t, d, "GET", "/plugins/nope/json")
	assert.Equal(t, code, 404)
	assert.Assert(t, is.Contains(msg, `plugin "nope" not found`))
	code, _ = apiStatus(t, d, "POST", "/plugins/nope/enable?timeout=0")
	assert.Equal(t, code, 404)
	res = d.Docker(t, "plugin", "ls", "-q")
	assert.Equal(t, strings.TrimSpace(res.Stdout), "")
}

func TestManagedPluginLiveRestore(t *testing.T) {
	reaped := reapPlugins(t)
	d := daemon.New(t)
	d.Start(t, "--live-restore")
	src := buildManagedPlugin(t)
	res := d.Docker(t, "plugin", "create", "vp", src)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "enable", "vp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	// Whatever happens below, do not leave the plugin running (live-restore keeps it past berthd).
	t.Cleanup(func() {
		if d.Docker(t, "version").ExitCode == 0 {
			d.Docker(t, "plugin", "rm", "-f", "vp")
		}
	})
	res = d.Docker(t, "volume", "create", "-d", "vp:latest", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	p := inspectPlugin(t, d, "vp")
	*reaped = append(*reaped, p.ID)
	pid := pluginPid(d, p.ID)
	assert.Assert(t, pid > 0)

	d.Stop(t)
	assert.NilError(t, syscall.Kill(pid, 0), "live-restore leaves the plugin running")
	d.Start(t, "--live-restore")
	assert.Assert(t, inspectPlugin(t, d, "vp").Enabled)
	assert.Equal(t, pluginPid(d, p.ID), pid, "the running plugin is reattached, not restarted")
	res = d.Docker(t, "volume", "inspect", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "create", "-d", "vp:latest", "v2")
	assert.Equal(t, res.ExitCode, 0, res.Combined())

	// The reattached task's exit is still noticed: it is restarted.
	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, "the plugin to be restarted", 60*time.Second, func() bool {
		np := pluginPid(d, p.ID)
		return np > 0 && np != pid
	})

	for _, v := range []string{"v1", "v2"} {
		res = d.Docker(t, "volume", "rm", v)
		assert.Equal(t, res.ExitCode, 0, res.Combined())
	}
	res = d.Docker(t, "plugin", "rm", "-f", "vp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	waitFor(t, "the plugin process to exit", 30*time.Second, func() bool { return pluginPid(d, p.ID) == 0 })
}

func TestManagedPluginAfterDaemonCrash(t *testing.T) {
	reaped := reapPlugins(t)
	d := daemon.New(t)
	d.Start(t)
	src := buildManagedPlugin(t)
	res := d.Docker(t, "plugin", "create", "vp", src)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "enable", "vp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "create", "-d", "vp:latest", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	p := inspectPlugin(t, d, "vp")
	*reaped = append(*reaped, p.ID)
	pid := pluginPid(d, p.ID)
	assert.Assert(t, pid > 0)

	// Without live-restore a crashed daemon's plugin task is replaced by a fresh one at start-up.
	d.Kill(t)
	d.Start(t)
	assert.Assert(t, inspectPlugin(t, d, "vp").Enabled)
	np := pluginPid(d, p.ID)
	assert.Assert(t, np > 0 && np != pid, "old %d new %d", pid, np)
	assert.Check(t, syscall.Kill(pid, 0) != nil, "the old plugin process is gone")
	res = d.Docker(t, "volume", "inspect", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	// Exactly one plugin instance keeps running (the old task's exit must not stop the new one).
	time.Sleep(2 * time.Second)
	assert.Equal(t, pluginPid(d, p.ID), np)
	assert.Assert(t, inspectPlugin(t, d, "vp").Enabled)

	res = d.Docker(t, "volume", "rm", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "rm", "-f", "vp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
}

// A plugin with CAP_SYS_ADMIN that mounts below its PropagatedMount: the mount shows on the host under
// the plugin's propagated-mount directory, and is gone once the plugin is disabled.
func TestManagedPluginMountPropagation(t *testing.T) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Missing(t, "busybox-static: %v", err)
	}
	reaped := reapPlugins(t)
	d := daemon.New(t)
	d.Start(t)
	src := buildManagedPlugin(t)
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "rootfs", "bin"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "rootfs", "bin", "busybox"), bb, 0o755))
	cfg := strings.Replace(managedConfig,
		`"Entrypoint": ["/volplugin",`,
		`"Linux": {"Capabilities": ["CAP_SYS_ADMIN"]},
  "Entrypoint": ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /data/m && /bin/busybox mount -t tmpfs tmpfs /data/m && exec /volplugin \"$@\"", "sh",`, 1)
	assert.NilError(t, os.WriteFile(filepath.Join(src, "config.json"), []byte(cfg), 0o644))

	res := d.Docker(t, "plugin", "create", "mp", src)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "enable", "mp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	p := inspectPlugin(t, d, "mp")
	*reaped = append(*reaped, p.ID)

	target := filepath.Join(d.Root, "plugins", p.ID, "propagated-mount", "m")
	mounted := func() bool {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && f[4] == target {
				return true
			}
		}
		return false
	}
	waitFor(t, "the plugin's mount to propagate to the host", 10*time.Second, mounted)

	res = d.Docker(t, "plugin", "disable", "mp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, !mounted(), "plugin mounts are cleaned up at disable")
	res = d.Docker(t, "plugin", "rm", "mp")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
}
