package security

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	containertypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// dockerdDefaultCaps is CapEff/CapBnd of a container under dockerd's defaults (read from the reference
// dockerd: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT
// MKNOD AUDIT_WRITE SETFCAP).
const dockerdDefaultCaps = "00000000a80425fb"

var (
	defaultMasked   = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	defaultReadonly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func TestDefaultConfinementAndPrivileged(t *testing.T) {
	d := daemon.NewWithBusybox(t)

	st := status(t, d)
	assert.Check(t, is.Equal(st["Seccomp"], "2"), "dockerd's default profile is applied")
	assert.Check(t, is.Equal(st["NoNewPrivs"], "0"))
	assert.Check(t, is.Equal(st["CapEff"], dockerdDefaultCaps))
	assert.Check(t, is.Equal(st["CapBnd"], dockerdDefaultCaps))
	assert.Check(t, is.Equal(st["CapInh"], "0000000000000000"))

	// Blocked by the profile (and the missing CAP_SYS_ADMIN): EPERM, as under dockerd.
	res := d.Docker(t, "run", "--rm", "busybox", "unshare", "-m", "true")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "Operation not permitted"))
	res = d.Docker(t, "run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/tmp")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "permission denied"))
	// Masked and read-only paths are in place.
	out := d.MustDocker(t, "run", "--rm", "busybox", "sh", "-c", "grep -c ' /proc/' /proc/mounts; (echo x > /proc/sysrq-trigger) 2>/dev/null && echo written; true")
	assert.Check(t, !strings.Contains(out, "written"), out)

	// inspect shows the default paths in HostConfig as dockerd does; a privileged container has none.
	d.MustDocker(t, "create", "--name", "plain", "busybox")
	c, err := d.Client(t).ContainerInspect(context.Background(), "plain")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(c.HostConfig.MaskedPaths, defaultMasked))
	assert.Check(t, is.DeepEqual(c.HostConfig.ReadonlyPaths, defaultReadonly))
	d.MustDocker(t, "create", "--name", "priv", "--privileged", "busybox")
	c, err = d.Client(t).ContainerInspect(context.Background(), "priv")
	assert.NilError(t, err)
	assert.Check(t, c.HostConfig.MaskedPaths == nil && c.HostConfig.ReadonlyPaths == nil)
	d.MustDocker(t, "create", "--name", "sysp", "--security-opt", "systempaths=unconfined", "busybox")
	c, err = d.Client(t).ContainerInspect(context.Background(), "sysp")
	assert.NilError(t, err)
	assert.Check(t, is.Len(c.HostConfig.MaskedPaths, 0))
	assert.Check(t, c.HostConfig.MaskedPaths != nil)

	// --privileged: no seccomp, every capability the daemon has, the blocked calls work.
	st = status(t, d, "--privileged")
	assert.Check(t, is.Equal(st["Seccomp"], "0"))
	host := parseStatus(readFile(t, "/proc/self/status"))
	assert.Check(t, is.Equal(st["CapEff"], host["CapBnd"]))
	out = d.MustDocker(t, "run", "--rm", "--privileged", "busybox", "sh", "-c", "unshare -m true && mount -t tmpfs none /tmp && echo ok")
	assert.Check(t, is.Equal(out, "ok"))

	// systempaths=unconfined: no masked /proc entries.
	out = d.MustDocker(t, "run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c", "grep -c ' /proc/' /proc/mounts || true")
	assert.Check(t, is.Equal(out, "0"))
}

func TestSecurityOpts(t *testing.T) {
	d := daemon.NewWithBusybox(t)

	st := status(t, d, "--security-opt", "seccomp=unconfined")
	assert.Check(t, is.Equal(st["Seccomp"], "0"))

	st = status(t, d, "--security-opt", "no-new-privileges")
	assert.Check(t, is.Equal(st["NoNewPrivs"], "1"))
	assert.Check(t, is.Equal(st["Seccomp"], "2"))
	st = status(t, d, "--security-opt", "no-new-privileges:true")
	assert.Check(t, is.Equal(st["NoNewPrivs"], "1"))
	// An exec'd process is held to the same.
	d.MustDocker(t, "run", "-d", "--name", "nnp", "--security-opt", "no-new-privileges=true", "busybox", "sleep", "60")
	out := d.MustDocker(t, "exec", "nnp", "grep", "NoNewPrivs", "/proc/self/status")
	assert.Check(t, is.Contains(out, "1"))
	d.MustDocker(t, "rm", "-f", "nnp")

	st = status(t, d, "--cap-drop", "ALL", "--cap-add", "CAP_NET_ADMIN", "--cap-add", "chown")
	assert.Check(t, is.Equal(st["CapEff"], "0000000000001001"))
	st = status(t, d, "--cap-drop", "net_raw", "--cap-drop", "CAP_MKNOD")
	assert.Check(t, is.Equal(st["CapEff"], "00000000a00405fb"))
	// CAP_SYS_ADMIN also opens the profile's capability-dependent rules.
	out = d.MustDocker(t, "run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", "unshare -m true && echo ok")
	assert.Check(t, is.Equal(out, "ok"))

	// A custom profile (the CLI sends the file's content) that blocks mkdir.
	prof := filepath.Join(t.TempDir(), "nomkdir.json")
	assert.NilError(t, os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644))
	res := d.Docker(t, "run", "--rm", "--security-opt", "seccomp="+prof, "busybox", "mkdir", "/x")
	assert.Check(t, res.ExitCode != 0, res.Combined())
	assert.Check(t, is.Contains(res.Stderr, "Operation not permitted"))
	d.MustDocker(t, "run", "--rm", "busybox", "mkdir", "/x")

	// Bad options are 400s at create, naming the option; nothing is created.
	cli := d.Client(t)
	for opt, msg := range map[string]string{
		"seccomp={bad":            "Decoding seccomp profile failed",
		"foo=bar":                 `invalid --security-opt 2: "foo=bar"`,
		"foo":                     `invalid --security-opt 1: "foo"`,
		"no-new-privileges=maybe": `invalid --security-opt 2: "no-new-privileges=maybe"`,
		"apparmor=docker-default": "AppArmor is not enabled on this host",
		"label=user:foo":          "SELinux is not enabled in berthd",
		"systempaths=foo":         `invalid --security-opt 2: "systempaths=foo"`,
	} {
		_, err := cli.ContainerCreate(context.Background(), &containertypes.Config{Image: "busybox"},
			&containertypes.HostConfig{SecurityOpt: []string{opt}}, nil, nil, "")
		assert.Check(t, errdefs.IsInvalidParameter(err), "%s: %v", opt, err)
		assert.Check(t, is.ErrorContains(err, msg), opt)
	}
	res = d.Docker(t, "create", "--security-opt", "apparmor=docker-default", "busybox")
	assert.Check(t, is.Contains(res.Stderr, "AppArmor is not enabled on this host"))
	// Accepted: what the host does not need to enforce.
	for _, opt := range []string{"apparmor=unconfined", "label=disable", "writable-cgroups=true"} {
		d.MustDocker(t, "run", "--rm", "--security-opt", opt, "busybox", "true")
	}
	assert.Equal(t, d.MustDocker(t, "ps", "-aq"), "")
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	assert.NilError(t, err)
	return string(b)
}
