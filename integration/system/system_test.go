// Package system holds the foundation's end-to-end tests: a real berthd with its own supervised
// containerd, driven by the real docker CLI and the moby Go client.
package system

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

func TestVersionInfoThroughCLIAndClient(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)

	res := d.Docker(t, "version", "--format", "{{.Server.Platform.Name}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Equal(strings.TrimSpace(res.Stdout), "berthd 1.45 1.24 linux"))

	res = d.Docker(t, "version")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Contains(res.Stdout, "containerd:"), "the containerd component is shown")

	res = d.Docker(t, "info", "--format", "{{json .}}")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	var info map[string]any
	assert.NilError(t, json.Unmarshal([]byte(res.Stdout), &info))
	assert.Check(t, is.Equal(info["DockerRootDir"], d.Root))
	assert.Check(t, is.Equal(info["OSType"], "linux"))
	assert.Check(t, info["NCPU"].(float64) >= 1)
	assert.Check(t, info["MemTotal"].(float64) > 0)
	assert.Check(t, is.Equal(info["Swarm"].(map[string]any)["LocalNodeState"], "inactive"))
	assert.Check(t, info["ContainerdCommit"].(map[string]any)["ID"] != "", "containerd's revision is reported")
	assert.Check(t, info["KernelVersion"] != "")

	c := d.Client(t)
	ctx := context.Background()
	v, err := c.ServerVersion(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(v.APIVersion, "1.45"))
	sinfo, err := c.Info(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(sinfo.Plugins.Volume, []string{"local"}))
	ping, err := c.Ping(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ping.APIVersion, "1.45"))
	assert.Check(t, is.Equal(ping.OSType, "linux"))
}

func TestAPIVersionsHeadersAndUnknownRoutes(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	hc := d.HTTPClient()

	get := func(path string) (*http.Response, string) {
		resp, err := hc.Get("http://berthd" + path)
		assert.NilError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/v1.45/version")
	assert.Check(t, is.Equal(resp.StatusCode, 200))
	for _, h := range []string{"Server", "Api-Version", "Ostype", "Docker-Experimental"} {
		assert.Check(t, resp.Header.Get(h) != "", "header %s", h)
	}
	resp, body = get("/v1.99/version")
	assert.Check(t, is.Equal(resp.StatusCode, 400))
	assert.Check(t, is.Contains(body, "client version 1.99 is too new. Maximum supported API version is 1.45"))
	resp, body = get("/v1.12/version")
	assert.Check(t, is.Equal(resp.StatusCode, 400))
	assert.Check(t, is.Contains(body, "is too old"))
	resp, body = get("/v1.45/no/such/route")
	assert.Check(t, is.Equal(resp.StatusCode, 404))
	assert.Check(t, is.Equal(resp.Header.Get("Content-Type"), "application/json"))
	assert.Check(t, is.Contains(body, `"message":"page not found"`))

	req, _ := http.NewRequest(http.MethodHead, "http://berthd/_ping", nil)
	hresp, err := hc.Do(req)
	assert.NilError(t, err)
	hresp.Body.Close()
	assert.Check(t, is.Equal(hresp.StatusCode, 200))
	assert.Check(t, is.Equal(hresp.Header.Get("Api-Version"), "1.45"))

	fi, err := os.Stat(d.Sock)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o660)), "API socket mode")
	st, err := os.Stat(d.Root)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o711)), "data root mode")
	st, err = os.Stat(d.ExecRoot)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Mode().Perm(), os.FileMode(0o700)), "exec root mode")
}

func TestEventsReloadAndReplay(t *testing.T) {
	d := daemon.New(t)
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"shutdown-timeout": 7}`), 0o644))
	d.Start(t)
	c := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()

	msgs, errs := c.Events(ctx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "daemon"))})
	// The subscription is live once headers arrive; give the request a moment to reach the daemon.
	time.Sleep(200 * time.Millisecond)
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"shutdown-timeout": 9, "labels": ["env=test"]}`), 0o644))
	d.Signal(t, syscall.SIGHUP)
	select {
	case m := <-msgs:
		assert.Check(t, is.Equal(string(m.Type), "daemon"))
		assert.Check(t, is.Equal(string(m.Action), "reload"))
		assert.Check(t, is.Equal(m.Actor.Attributes["shutdown-timeout"], "9"))
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no reload event")
	}
	info, err := c.Info(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(info.Labels, []string{"env=test"}), "labels were reloaded")

	// Replay from the ring buffer through the CLI, bounded by --until so the command ends.
	res := d.Docker(t, "system", "events", "--since", start.Add(-time.Second).Format(time.RFC3339),
		"--until", time.Now().Add(time.Second).Format(time.RFC3339), "--filter", "event=reload")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Check(t, is.Contains(res.Stdout, "daemon reload"))

	res = d.Docker(t, "events", "--filter", "bogus=1", "--until", "1s")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "invalid filter 'bogus'"))
}

func TestSdNotifyReadyAndStopping(t *testing.T) {
	d := daemon.New(t)
	sockPath := filepath.Join(d.Dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	assert.NilError(t, err)
	defer conn.Close()
	d.Env = []string{"NOTIFY_SOCKET=" + sockPath}
	_, err = d.StartProcess("-H", d.Host())
	assert.NilError(t, err)

	read := func() string {
		buf := make([]byte, 256)
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := conn.Read(buf)
		assert.NilError(t, err)
		return string(buf[:n])
	}
	assert.Check(t, is.Equal(read(), "READY=1"))
	// READY=1 promises a serving API.
	resp, err := d.HTTPClient().Get("http://berthd/_ping")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, 200))

	d.Signal(t, syscall.SIGTERM)
	assert.Check(t, is.Equal(read(), "STOPPING=1"))
	code, err := d.Wait(60 * time.Second)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(code, 0))
}

func TestSocketActivation(t *testing.T) {
	d := daemon.New(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: d.Sock, Net: "unix"})
	assert.NilError(t, err)
	f, err := l.File()
	assert.NilError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
	// LISTEN_PID must be berthd's own pid: the shell sets it to its own and then execs berthd.
	_, err = d.StartWrapped(`export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@"`, []*os.File{f}, "-H", "fd://")
	assert.NilError(t, err)
	f.Close()
	assert.NilError(t, d.WaitReady(60*time.Second), d.Log())
	res := d.Docker(t, "version", "--format", "{{.Server.Platform.Name}}")
	assert.Check(t, is.Equal(strings.TrimSpace(res.Stdout), "berthd"), res.Combined())
}

func TestSocketActivationWithoutSockets(t *testing.T) {
	d := daemon.New(t)
	_, err := d.StartProcess("-H", "fd://")
	assert.NilError(t, err)
	code, err := d.Wait(60 * time.Second)
	assert.NilError(t, err)
	assert.Check(t, code != 0)
	assert.Check(t, is.Contains(d.Log(), "no sockets found via socket activation"))
}

func TestPidfileConflictAndCleanExit(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)

	other := daemon.New(t)
	other.Pidfile = d.Pidfile
	_, err := other.StartProcess("-H", other.Host())
	assert.NilError(t, err)
	code, err := other.Wait(60 * time.Second)
	assert.NilError(t, err)
	assert.Check(t, code != 0)
	assert.Check(t, is.Contains(other.Log(), "ensure berthd is not running or delete "+d.Pidfile))

	ctdPid := d.ContainerdPid()
	assert.Check(t, ctdPid > 0)
	d.Stop(t)
	_, err = os.Stat(d.Pidfile)
	assert.Check(t, os.IsNotExist(err), "pidfile removed on exit")
	_, err = os.Stat(d.Sock)
	assert.Check(t, os.IsNotExist(err), "socket removed on exit")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if syscall.Kill(ctdPid, 0) != nil {
			return poll.Success()
		}
		return poll.Continue("supervised containerd %d still running", ctdPid)
	}, poll.WithTimeout(20*time.Second))

	// A stale pidfile (dead pid) does not block the next start.
	assert.NilError(t, os.WriteFile(d.Pidfile, []byte("999999"), 0o644))
	d.Start(t)
}

func TestSupervisedContainerdIsRestarted(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	first := d.ContainerdPid()
	assert.Assert(t, first > 0)
	assert.NilError(t, syscall.Kill(first, syscall.SIGKILL))

	poll.WaitOn(t, func(poll.LogT) poll.Result {
		pid := d.ContainerdPid()
		if pid == 0 || pid == first {
			return poll.Continue("containerd not restarted yet")
		}
		res := d.Docker(t, "info", "--format", "{{.ContainerdCommit.ID}}")
		if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) == "" {
			return poll.Continue("docker info does not see containerd yet: %s", res.Combined())
		}
		return poll.Success()
	}, poll.WithTimeout(60*time.Second), poll.WithDelay(200*time.Millisecond))
}

func TestTCPWithoutTLSIsRefused(t *testing.T) {
	d := daemon.New(t)
	_, err := d.StartProcess("-H", d.Host(), "-H", "tcp://127.0.0.1:0")
	assert.NilError(t, err)
	code, err := d.Wait(60 * time.Second)
	assert.NilError(t, err)
	assert.Check(t, code != 0)
	assert.Check(t, is.Contains(d.Log(), "refusing to listen on tcp://127.0.0.1:0 without TLS"))

	// Explicitly asking for it works.
	port := freePort(t)
	d.Start(t, "-H", "tcp://127.0.0.1:"+port, "--tls=false")
	resp, err := http.Get("http://127.0.0.1:" + port + "/_ping")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, 200))
}

func TestBadDaemonJSON(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"malformed": {`{"debug": tru`, "daemon.json"},
		"unknown":   {`{"not-an-option": 1}`, "the following directives don't match any configuration option: not-an-option"},
		"conflict":  {`{"data-root": "/elsewhere"}`, "specified both as a flag and in the configuration file: data-root"},
	} {
		t.Run(name, func(t *testing.T) {
			d := daemon.New(t)
			assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(tc.content), 0o644))
			_, err := d.StartProcess("-H", d.Host())
			assert.NilError(t, err)
			code, err := d.Wait(60 * time.Second)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(code, 1))
			assert.Check(t, is.Contains(d.Log(), tc.want))
		})
	}
}

func TestValidateFlag(t *testing.T) {
	d := daemon.New(t)
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"live-restore": true}`), 0o644))
	_, err := d.StartProcess("--validate")
	assert.NilError(t, err)
	code, err := d.Wait(30 * time.Second)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(code, 0))
	assert.Check(t, is.Contains(d.Log(), "configuration OK"))
}

func TestSIGUSR1DumpsStacks(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	d.Signal(t, syscall.SIGUSR1)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		m, _ := filepath.Glob(filepath.Join(d.ExecRoot, "goroutine-stacks-*.log"))
		if len(m) == 1 {
			return poll.Success()
		}
		return poll.Continue("no stack dump yet")
	}, poll.WithTimeout(10*time.Second))
	// Still serving.
	assert.NilError(t, d.WaitReady(5*time.Second))
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
