package admin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestValidateRefusesUnsupportedOptions: an option berthd does not act on is refused by --validate (and at
// start-up), naming it; one set to what berthd does anyway is accepted, as are dockerd's own flag names.
func TestValidateRefusesUnsupportedOptions(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "daemon.json")
	write := func(s string) {
		assert.NilError(t, os.WriteFile(cfg, []byte(s), 0o600))
	}
	empty := filepath.Join(dir, "empty.json")
	assert.NilError(t, os.WriteFile(empty, []byte("{}"), 0o600))
	write(`{"storage-opts": ["dm.basesize=20G"], "cpu-rt-period": 1000, "rootless": false}`)
	out, code := runBerthd(t, "--validate", "--config-file", cfg)
	assert.Check(t, is.Equal(code, 1), out)
	assert.Check(t, is.Contains(out, "unable to configure the daemon with file "+cfg+": berthd does not support the following directives: cpu-rt-period (real-time CPU scheduling"))
	assert.Check(t, is.Contains(out, "; storage-opts (storage driver options"))
	assert.Check(t, !is.Contains(out, "rootless")().Success(), "a harmless value is not refused: %s", out)

	write(`{"log-driver": "local", "log-opts": {"max-file": "3"}, "registry-mirrors": ["http://127.0.0.1:5000"],
		"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}, "default-shm-size": "128M",
		"exec-opts": ["native.cgroupdriver=cgroupfs"], "max-concurrent-downloads": 2, "features": {"buildkit": false}}`)
	out, code = runBerthd(t, "--validate", "--config-file", cfg)
	assert.Check(t, is.Equal(code, 0), out)
	assert.Check(t, is.Contains(out, "configuration OK"))

	write(`{"log-opts": {"max-size": "1x"}}`)
	out, code = runBerthd(t, "--validate", "--config-file", cfg)
	assert.Check(t, is.Equal(code, 1), out)
	assert.Check(t, is.Contains(out, "failed to set log opts: invalid size: '1x'"))

	out, code = runBerthd(t, "--validate", "--config-file", empty, "--log-driver", "local",
		"--default-ulimit", "nofile=1024:2048", "--exec-opt", "native.cgroupdriver=cgroupfs", "--registry-mirror", "https://m.example",
		"--rootless=false", "--oom-score-adjust", "-500", "--default-shm-size", "128m")
	assert.Check(t, is.Equal(code, 0), out)

	out, code = runBerthd(t, "--validate", "--config-file", empty, "--cri-containerd", "--api-cors-header", "*")
	assert.Check(t, is.Equal(code, 1), out)
	assert.Check(t, is.Contains(out, "berthd does not support the following flags: --api-cors-header (CORS headers"))
	assert.Check(t, is.Contains(out, "; --cri-containerd (the supervised containerd never serves CRI"))

	// Start-up refuses the same way, before touching anything.
	d := daemon.New(t)
	write(`{"swarm-default-advertise-addr": "eth0"}`)
	assert.NilError(t, os.Rename(cfg, d.ConfigFile))
	err := d.StartWithError("-H", d.Host())
	assert.Check(t, err != nil)
	assert.Check(t, is.Contains(d.Log(), "berthd does not support the following directives: swarm-default-advertise-addr (swarm mode)"))
}

// TestInfoShowsOptionsInForce: docker info reports the logging driver, cgroup driver and mirrors.
func TestInfoShowsOptionsInForce(t *testing.T) {
	d := daemon.New(t)
	d.Start(t, "--log-driver", "local", "--registry-mirror", "http://127.0.0.1:5999", "--insecure-registry", "reg.example:5000")
	out := d.MustDocker(t, "info", "--format", "{{.LoggingDriver}} {{.CgroupDriver}} {{.RegistryConfig.Mirrors}} {{.Plugins.Log}}")
	assert.Check(t, is.Equal(out, "local cgroupfs [http://127.0.0.1:5999/] [json-file local]"))
	out = d.MustDocker(t, "info")
	assert.Check(t, is.Contains(out, "Registry Mirrors:\n  http://127.0.0.1:5999/"))
	assert.Check(t, is.Contains(out, "Insecure Registries:\n  reg.example:5000"))
}

// TestHostDependentOptionsRefused: options this host cannot honour are refused by --validate already.
func TestHostDependentOptionsRefused(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.json")
	assert.NilError(t, os.WriteFile(empty, []byte("{}"), 0o600))
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		out, code := runBerthd(t, "--validate", "--config-file", empty, "--exec-opt", "native.cgroupdriver=systemd")
		assert.Check(t, is.Equal(code, 1), out)
		assert.Check(t, is.Contains(out, "native.cgroupdriver=systemd: systemd is not running on this host"))
	}
	out, code := runBerthd(t, "--validate", "--config-file", empty, "--add-runtime", "x=/nonexistent/runtime", "--default-runtime", "x")
	assert.Check(t, is.Equal(code, 1), out)
	assert.Check(t, is.Contains(out, "default runtime x"))
}
