package testenv

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// dockerdScript runs Debian's dockerd isolated: a private mount namespace with empty tmpfs over the host's
// plugin directories (dockerd has no flag for them and would call, and cache, every plugin socket on the
// machine), no bridge and no iptables (nothing touches the host's network). Plugin sockets named in
// $BENCH_PLUGIN_SOCKS (space-separated paths) are bind-mounted into its private /run/docker/plugins. $1 is
// the daemon's dir; the rest are extra dockerd flags.
const dockerdScript = `mount -t tmpfs refplugins /run/docker/plugins 2>/dev/null || { mkdir -p /run/docker/plugins; mount -t tmpfs refplugins /run/docker/plugins; }
for d in /etc/docker/plugins /usr/lib/docker/plugins; do [ -d "$d" ] && mount -t tmpfs refspec "$d"; done
for s in ${BENCH_PLUGIN_SOCKS:-}; do n=$(basename "$s"); touch "/run/docker/plugins/$n"; mount --bind "$s" "/run/docker/plugins/$n"; done
dir=$1; shift
exec dockerd -H "unix://$dir/docker.sock" --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
  --bridge=none --iptables=false --ip6tables=false "$@"`

// DockerdCommand returns the command that runs Debian's dockerd isolated in dir (socket dir/docker.sock),
// with extra flags. The caller starts it, waits for /_ping and stops it with SIGTERM.
func DockerdCommand(dir string, extra ...string) (*exec.Cmd, error) {
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, err
	}
	args := append([]string{"--mount", "--propagation", "private", "bash", "-c", dockerdScript, "_", dir}, extra...)
	return exec.Command("unshare", args...), nil
}

// StartDockerd starts Debian's dockerd isolated in a fresh dir for a test that compares berthd with it,
// waits until it answers /_ping and stops it when the test ends. It returns the daemon's socket path.
// A missing dockerd is Missing (a failure in strict mode).
func StartDockerd(t testing.TB) string {
	t.Helper()
	NeedRoot(t)
	NeedCommand(t, "dockerd", "docker.io")
	dir, err := os.MkdirTemp("/tmp", "bd-ref")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := DockerdCommand(dir)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		// dockerd's containerd and shims run in the daemon's session; anything left is killed with it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		exec.Command("umount", "-R", "-l", dir).Run()
		os.RemoveAll(dir)
	})
	sock := filepath.Join(dir, "docker.sock")
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	// Poll the socket: dockerd has no readiness signal to wait on but its API answering.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd exited during start:\n%s", b)
		default:
		}
		if resp, err := hc.Get("http://d/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return sock
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dockerd did not answer /_ping within 60s; see %s", logf.Name())
	return ""
}
