package admin

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// unitFile is a systemd unit as key -> values (repeated keys keep every value), per section.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	assert.NilError(t, err)
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			assert.Assert(t, ok, "bad unit line %q", l)
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) get(section, key string) string { return strings.Join(u[section][key], " ") }

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	assert.NilError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestMakeInstallAndUnits: `make install` stages berthd, the units (ExecStart pointing at the installed
// binary) and the docs under DESTDIR/PREFIX; the installed service's ExecStart line, run with the socket
// the socket unit describes passed as systemd does (LISTEN_FDS) and a NOTIFY_SOCKET listener, reports
// READY=1 once the API answers on that socket.
func TestMakeInstallAndUnits(t *testing.T) {
	stage := t.TempDir()
	cmd := exec.Command("make", "install", "DESTDIR="+stage, "PREFIX=/usr", "BERTHD_BIN="+daemon.Binary(t))
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
	bin := filepath.Join(stage, "usr/bin/berthd")
	fi, err := os.Stat(bin)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o755)))
	for _, p := range []string{"usr/share/doc/berthd/README.md", "usr/share/doc/berthd/daemon.json.example"} {
		_, err := os.Stat(filepath.Join(stage, p))
		assert.Check(t, err, p)
	}

	svc := parseUnit(t, filepath.Join(stage, "usr/lib/systemd/system/berthd.service"))
	sock := parseUnit(t, filepath.Join(stage, "usr/lib/systemd/system/berthd.socket"))
	assert.Check(t, is.Equal(svc.get("Unit", "Conflicts"), "docker.service docker.socket"))
	assert.Check(t, is.Contains(svc.get("Unit", "Wants"), "containerd.service"))
	assert.Check(t, is.Contains(svc.get("Unit", "After"), "containerd.service"))
	assert.Check(t, is.Equal(svc.get("Unit", "Requires"), "berthd.socket"))
	for k, v := range map[string]string{"Type": "notify", "Restart": "always", "Delegate": "yes", "KillMode": "process",
		"LimitNPROC": "infinity", "LimitCORE": "infinity", "TasksMax": "infinity", "OOMScoreAdjust": "-500", "TimeoutStartSec": "0"} {
		assert.Check(t, is.Equal(svc.get("Service", k), v), k)
	}
	assert.Check(t, is.Equal(sock.get("Socket", "SocketGroup"), "docker"))
	assert.Check(t, is.Equal(sock.get("Socket", "SocketMode"), "0660"))
	assert.Check(t, is.Equal(sock.get("Unit", "Conflicts"), "docker.socket"))
	assert.Check(t, is.Equal(sock.get("Socket", "ListenStream"), "/run/docker.sock"))

	exe := strings.Fields(svc.get("Service", "ExecStart"))
	assert.Assert(t, is.Equal(exe[0], "/usr/bin/berthd"), "ExecStart names the installed binary")

	// Run that line (the installed binary, its arguments; the harness adds only private paths) as systemd
	// would: the listening socket as fd 3, LISTEN_PID = berthd's pid, NOTIFY_SOCKET for readiness.
	d := daemon.New(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.Sock, Net: "unix"})
	assert.NilError(t, err)
	assert.NilError(t, os.Chmod(d.Sock, 0o660))
	f, err := l.File()
	assert.NilError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
	notifyPath := filepath.Join(d.Dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	assert.NilError(t, err)
	defer notify.Close()
	d.Env = []string{"NOTIFY_SOCKET=" + notifyPath}
	script := `shift; export LISTEN_PID=$$ LISTEN_FDS=1; exec "` + filepath.Join(stage, exe[0]) + `" "$@"`
	_, err = d.StartWrapped(script, []*os.File{f}, exe[1:]...)
	assert.NilError(t, err)
	f.Close()

	buf := make([]byte, 256)
	assert.NilError(t, notify.SetReadDeadline(time.Now().Add(60*time.Second)))
	n, err := notify.Read(buf)
	assert.NilError(t, err, d.Log())
	assert.Check(t, is.Equal(string(buf[:n]), "READY=1"))
	assert.Check(t, is.Contains(d.Log(), "/bin/sh -c "+script))
	res := d.Docker(t, "version", "--format", "{{.Server.Platform.Name}}")
	assert.Check(t, is.Equal(strings.TrimSpace(res.Stdout), "berthd"), res.Combined())
	st, err := os.Stat(d.Sock)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o660)), "berthd keeps the socket unit's mode")
}
