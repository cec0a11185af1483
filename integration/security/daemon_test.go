package security

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestDaemonSecurityDefaults(t *testing.T) {
	d := daemon.NewWithBusybox(t, "--no-new-privileges")
	info, err := d.Client(t).Info(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Contains(info.SecurityOptions, "name=seccomp,profile=builtin"))
	assert.Check(t, is.Contains(info.SecurityOptions, "name=no-new-privileges"))
	for _, o := range info.SecurityOptions {
		assert.Check(t, !strings.Contains(o, "apparmor") && !strings.Contains(o, "selinux"), "not enforced here: %s", o)
	}
	st := status(t, d)
	assert.Check(t, is.Equal(st["NoNewPrivs"], "1"))
	// The container's own option wins over the daemon's default.
	st = status(t, d, "--security-opt", "no-new-privileges=false")
	assert.Check(t, is.Equal(st["NoNewPrivs"], "0"))
}

func TestDaemonSeccompProfileFile(t *testing.T) {
	d := daemon.New(t)
	prof := filepath.Join(d.Dir, "nomkdir.json")
	assert.NilError(t, os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644))
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"seccomp-profile": "`+prof+`"}`), 0o644))
	d.Start(t)
	d.LoadBusybox(t)
	info, err := d.Client(t).Info(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Contains(info.SecurityOptions, "name=seccomp,profile="+prof))
	res := d.Docker(t, "run", "--rm", "busybox", "mkdir", "/x")
	assert.Check(t, is.Contains(res.Stderr, "Operation not permitted"), res.Combined())
	// unconfined per container still turns it off.
	d.MustDocker(t, "run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "mkdir", "/x")
	d.Stop(t)

	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"seccomp-profile": "unconfined"}`), 0o644))
	d.Start(t)
	st := status(t, d)
	assert.Check(t, is.Equal(st["Seccomp"], "0"))
	info, err = d.Client(t).Info(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Contains(info.SecurityOptions, "name=seccomp,profile=unconfined"))
}

// TestDaemonRefusesUnsupportedSecurity: options berthd cannot enforce stop the start (and --validate), by
// name, instead of being accepted and ignored.
func TestDaemonRefusesUnsupportedSecurity(t *testing.T) {
	bin := daemon.Binary(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	assert.NilError(t, os.WriteFile(bad, []byte(`{"defaultAction":`), 0o644))
	for _, tc := range []struct {
		file string
		args []string
		msg  string
	}{
		{file: `{"selinux-enabled": true}`, msg: "selinux-enabled: SELinux support is not implemented in berthd"},
		{args: []string{"--selinux-enabled"}, msg: "selinux-enabled: SELinux support is not implemented in berthd"},
		{file: `{"userns-remap": "default"}`, msg: "userns-remap: user namespace remapping is not implemented in berthd"},
		{args: []string{"--userns-remap", "default"}, msg: "userns-remap: user namespace remapping is not implemented"},
		{file: `{"no-new-privileges": true}`, args: []string{"--no-new-privileges"}, msg: "the following directives are specified both as a flag and in the configuration file: no-new-privileges"},
	} {
		cfg := filepath.Join(dir, "daemon.json")
		file := tc.file
		if file == "" {
			file = "{}"
		}
		assert.NilError(t, os.WriteFile(cfg, []byte(file), 0o644))
		args := append([]string{"--validate", "--config-file", cfg}, tc.args...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		assert.Check(t, err != nil, "%v: %s", tc, out)
		assert.Check(t, is.Contains(string(out), tc.msg))
	}

	// A profile that cannot be read or parsed stops the start.
	for _, tc := range []struct{ path, msg string }{
		{filepath.Join(dir, "missing.json"), "opening seccomp profile (" + filepath.Join(dir, "missing.json") + ") failed"},
		{bad, "Decoding seccomp profile failed"},
	} {
		d := daemon.New(t)
		err := d.StartWithError("-H", d.Host(), "--seccomp-profile", tc.path)
		assert.Check(t, err != nil)
		assert.Check(t, is.Contains(d.Log(), tc.msg))
	}
}
