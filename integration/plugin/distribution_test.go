package plugin

// End-to-end tests of plugin distribution with the docker CLI and a real registry (Debian's
// docker-registry on loopback): push a created plugin, install it (privileges, pull, enable), use it as a
// volume driver, upgrade it.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/berthd/berthd/integration/internal/daemon"
)

func TestPluginPushInstallUpgrade(t *testing.T) {
	reaped := reapPlugins(t)
	addr := regtest.StartRegistry(t, "", "")
	d := daemon.New(t)
	d.Start(t)
	src := buildManagedPlugin(t)
	remote := addr + "/vp:latest"

	// Push a created plugin.
	res := d.Docker(t, "plugin", "create", remote, src)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	*reaped = append(*reaped, inspectPlugin(t, d, remote).ID)
	res = d.Docker(t, "plugin", "push", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Assert(t, is.Contains(res.Stdout, "The push refers to repository ["+addr+"/vp]"))
	assert.Assert(t, is.Contains(res.Stdout, "latest: digest: sha256:"))
	res = d.Docker(t, "plugin", "rm", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())

	// Install: privileges, pull, enable; then usable as a volume driver.
	res = d.Docker(t, "plugin", "install", "--grant-all-permissions", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Assert(t, is.Contains(res.Stdout, "Installed plugin "+remote))
	p := inspectPlugin(t, d, remote)
	*reaped = append(*reaped, p.ID)
	assert.Assert(t, p.Enabled)
	assert.Equal(t, p.Name, remote)
	assert.DeepEqual(t, p.Settings.Env, []string{"DEBUG=0"})
	res = d.Docker(t, "plugin", "inspect", "--format", "{{.PluginReference}}", remote)
	assert.Equal(t, strings.TrimSpace(res.Stdout), remote)

	res = d.Docker(t, "volume", "create", "-d", remote, "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}")
	assert.Assert(t, is.Contains(res.Stdout, remote+" v1"))
	_, err := os.Stat(filepath.Join(d.Root, "plugins", p.ID, "propagated-mount", "volumes", "v1"))
	assert.NilError(t, err, "the pulled plugin made the volume")

	// Install under an alias with a setting, left disabled.
	res = d.Docker(t, "plugin", "install", "--grant-all-permissions", "--disable", "--alias", "other", remote, "DEBUG=1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	o := inspectPlugin(t, d, "other")
	*reaped = append(*reaped, o.ID)
	assert.Assert(t, !o.Enabled)
	assert.DeepEqual(t, o.Settings.Env, []string{"DEBUG=1"})

	// Errors: name taken (400), unknown remote (404), bad privileges.
	res = d.Docker(t, "plugin", "install", "--grant-all-permissions", remote)
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "plugin "+remote+" already exists"))
	code, msg := apiStatus(t, d, "POST", "/plugins/pull?remote="+remote)
	assert.Equal(t, code, 400, msg)
	res = d.Docker(t, "plugin", "install", "--grant-all-permissions", addr+"/nope:latest")
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "not found"), res.Stderr)
	code, msg = apiStatus(t, d, "GET", "/plugins/privileges?remote="+addr+"/nope:latest")
	assert.Equal(t, code, 404, msg)
	code, msg = apiStatus(t, d, "POST", "/plugins/pull?remote="+addr+"/nope:latest&name=x")
	assert.Equal(t, code, 404, msg)
	code, _ = apiStatus(t, d, "GET", "/plugins/privileges?remote="+remote)
	assert.Equal(t, code, 200)

	// Upgrade: refused while enabled, then to v2 once disabled; ID and settings are kept.
	v2src := buildManagedPlugin(t)
	cfg, err := os.ReadFile(filepath.Join(v2src, "config.json"))
	assert.NilError(t, err)
	cfg = []byte(strings.Replace(string(cfg), "berthd test volume plugin", "berthd test volume plugin v2", 1))
	assert.NilError(t, os.WriteFile(filepath.Join(v2src, "config.json"), cfg, 0o644))
	v2ref := addr + "/vp:v2"
	res = d.Docker(t, "plugin", "create", v2ref, v2src)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "push", v2ref)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "rm", v2ref)
	assert.Equal(t, res.ExitCode, 0, res.Combined())

	code, msg = apiStatus(t, d, "POST", "/plugins/"+remote+"/upgrade?remote="+v2ref)
	assert.Equal(t, code, 409, msg)
	assert.Assert(t, is.Contains(msg, "plugin must be disabled before upgrading"))

	res = d.Docker(t, "volume", "rm", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "disable", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", remote, v2ref)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	up := inspectPlugin(t, d, remote)
	assert.Equal(t, up.ID, p.ID)
	res = d.Docker(t, "plugin", "inspect", "--format", "{{.Config.Description}} {{.PluginReference}}", remote)
	assert.Equal(t, strings.TrimSpace(res.Stdout), "berthd test volume plugin v2 "+v2ref)
	res = d.Docker(t, "plugin", "enable", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "create", "-d", remote, "v2")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d.Docker(t, "volume", "rm", "v2")
	assert.Equal(t, res.ExitCode, 0, res.Combined())

	// Events: install is pull then enable.
	res = d.Docker(t, "events", "--since", "0", "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "type=plugin", "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
	assert.Assert(t, is.Contains(res.Stdout, "pull "+remote+" "+remote), res.Stdout)
	assert.Assert(t, is.Contains(res.Stdout, "pull "+remote+" other:latest"), res.Stdout)

	for _, n := range []string{remote, "other"} {
		res = d.Docker(t, "plugin", "rm", "-f", n)
		assert.Equal(t, res.ExitCode, 0, res.Combined())
	}
}

// TestPluginInstallOnOtherDaemon installs, on a second berthd, a plugin pushed by the first.
func TestPluginInstallOnOtherDaemon(t *testing.T) {
	reaped := reapPlugins(t)
	addr := regtest.StartRegistry(t, "", "")
	d1 := daemon.New(t)
	d1.Start(t)
	remote := addr + "/shared/vp:1.0"
	res := d1.Docker(t, "plugin", "create", remote, buildManagedPlugin(t))
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d1.Docker(t, "plugin", "push", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	d1.Stop(t)

	d2 := daemon.New(t)
	d2.Start(t)
	res = d2.Docker(t, "plugin", "install", "--grant-all-permissions", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	p := inspectPlugin(t, d2, remote)
	*reaped = append(*reaped, p.ID)
	assert.Assert(t, p.Enabled)
	res = d2.Docker(t, "volume", "create", "-d", remote, "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d2.Docker(t, "volume", "inspect", "--format", "{{.Driver}}", "v1")
	assert.Equal(t, strings.TrimSpace(res.Stdout), remote)

	// Still there, enabled and serving its volume after a restart.
	d2.Restart(t)
	assert.Assert(t, inspectPlugin(t, d2, remote).Enabled)
	res = d2.Docker(t, "volume", "rm", "v1")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	res = d2.Docker(t, "plugin", "rm", "-f", remote)
	assert.Equal(t, res.ExitCode, 0, res.Combined())
}
