package security

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const authzManagedConfig = `{
  "Description": "berthd test authorization plugin",
  "Documentation": "hack/plugins/authzplugin",
  "Interface": {"Types": ["docker.authz/1.0"], "Socket": "authz.sock"},
  "Entrypoint": ["/authzplugin", "-socket", "/run/docker/plugins/authz.sock", "-deny", "/volumes/create"],
  "Network": {"Type": ""}
}`

// buildAuthzPlugin makes a `docker plugin create` directory holding a static hack/plugins/authzplugin.
func buildAuthzPlugin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"tmp", "run/docker/plugins", "etc", "proc", "sys", "dev"} {
		assert.NilError(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(rootfs, "authzplugin"), "github.com/berthd/berthd/hack/plugins/authzplugin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(authzManagedConfig), 0o644))
	return dir
}

// TestAuthzManagedPlugin: a managed docker.authz/1.0 plugin guards the API; disabling it while it is in
// the chain is refused, a forced disable takes it out of the chain.
func TestAuthzManagedPlugin(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	d.MustDocker(t, "plugin", "create", "authzm", buildAuthzPlugin(t))
	d.MustDocker(t, "plugin", "enable", "authzm")
	d.Stop(t)

	d.Start(t, "--authorization-plugin", "authzm")
	d.MustDocker(t, "volume", "ls")
	res := d.Docker(t, "volume", "create", "v1")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "authorization denied by plugin authzm:latest: denied by authzplugin policy"))

	res = d.Docker(t, "plugin", "disable", "authzm")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "plugin authzm:latest is in use as an authorization plugin"))
	assert.Check(t, is.Equal(d.MustDocker(t, "plugin", "inspect", "-f", "{{.Enabled}}", "authzm"), "true"))
	res = d.Docker(t, "volume", "create", "v2")
	assert.Check(t, is.Contains(res.Stderr, "authorization denied by plugin authzm:latest"), "still guarded")

	d.MustDocker(t, "plugin", "disable", "-f", "authzm")
	d.MustDocker(t, "volume", "create", "v3")
	assert.Check(t, !strings.Contains(d.MustDocker(t, "volume", "ls", "-q"), "v1"))
}
