// Package buildkit tests berthd's embedded BuildKit end to end: the real buildx CLI plugin (docker
// driver) and the docker CLI, the BuildKit Go client over POST /grpc, against a real berthd and containerd.
package buildkit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv/buildx"
	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	bkclient "github.com/moby/buildkit/client"
	"gotest.tools/v3/assert"
)

// env is one berthd (busybox:latest loaded) and a DOCKER_CONFIG with buildx as a CLI plugin and
// `docker builder` aliased to it.
type env struct {
	t   *testing.T
	d   *daemon.Daemon
	cfg string
	// extra is added to the docker CLI's environment.
	extra []string
}

// start starts berthd with busybox:latest and prepares buildx.
func start(t *testing.T, extra ...string) *env {
	t.Helper()
	cfg := buildx.Need(t)
	d := daemon.NewWithBusybox(t, extra...)
	return &env{t: t, d: d, cfg: cfg}
}

// run runs the docker CLI (with buildx) in dir (the current directory when empty) against berthd.
func (e *env) run(ctx context.Context, dir string, args ...string) daemon.Result {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+e.d.Host(), "DOCKER_CONFIG="+e.cfg, "DOCKER_CONTEXT="), e.extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := daemon.Result{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("docker %v: %v", args, err)
		}
		res.ExitCode = ee.ExitCode()
	}
	return res
}

// docker runs the docker CLI with a 5-minute bound.
func (e *env) docker(args ...string) daemon.Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return e.run(ctx, "", args...)
}

// ok runs the docker CLI, fails the test unless it exits 0, and returns stdout+stderr (BuildKit's
// progress goes to stderr).
func (e *env) ok(args ...string) string {
	e.t.Helper()
	res := e.docker(args...)
	if res.ExitCode != 0 {
		e.t.Fatalf("docker %v: exit %d:\n%s", args, res.ExitCode, res.Combined())
	}
	return res.Combined()
}

// out runs the docker CLI, fails the test unless it exits 0, and returns its trimmed stdout.
func (e *env) out(args ...string) string {
	e.t.Helper()
	res := e.docker(args...)
	if res.ExitCode != 0 {
		e.t.Fatalf("docker %v: exit %d:\n%s", args, res.ExitCode, res.Combined())
	}
	return strings.TrimSpace(res.Stdout)
}

// writeContext writes files (name -> content) into a new directory and returns it.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		assert.NilError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return dir
}

// bkClient is BuildKit's Go client on berthd's POST /grpc, as buildx's docker driver dials it.
func bkClient(t *testing.T, d *daemon.Daemon) *bkclient.Client {
	t.Helper()
	c, err := bkclient.New(context.Background(), "", bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return dialHijack(ctx, d.Sock, "/grpc")
	}))
	assert.NilError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// dialHijack upgrades POST path on the API socket to h2c and returns the raw connection.
func dialHijack(ctx context.Context, sock, path string) (net.Conn, error) {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: berthd\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n", path); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	if br.Buffered() > 0 {
		return &bufConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// containerdState lists the containers and tasks berthd's containerd holds in berthd's namespace: none
// may come from BuildKit, whose RUN steps run through runc directly.
func containerdState(t *testing.T, d *daemon.Daemon) (ctrs, tasks []string) {
	t.Helper()
	c, err := containerd.New(filepath.Join(d.ExecRoot, "containerd", "containerd.sock"), containerd.WithDefaultNamespace(namespace))
	assert.NilError(t, err)
	defer c.Close()
	ctx := context.Background()
	list, err := c.Containers(ctx)
	assert.NilError(t, err)
	for _, ctr := range list {
		ctrs = append(ctrs, ctr.ID())
	}
	resp, err := c.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	assert.NilError(t, err)
	for _, tk := range resp.Tasks {
		tasks = append(tasks, tk.ID+":"+tk.Status.String())
	}
	return ctrs, tasks
}

// sleeper is a RUN step that sleeps for a number of seconds no other process on the machine uses, so
// that stepRunning finds it.
func sleeper() (run, marker string) {
	marker = strconv.Itoa(1000000 + int(time.Now().UnixNano()%1000000))
	return "RUN sleep " + marker, marker
}

// stepRunning reports whether the RUN step of sleeper(marker) runs: a `sleep <marker>` process in a
// BuildKit cgroup.
func stepRunning(marker string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if string(cmdline) != "sleep\x00"+marker+"\x00" {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if strings.Contains(string(cg), "/buildkit/") {
			return true
		}
	}
	return false
}

// namespace is berthd's default containerd namespace, where BuildKit's worker runs too.
const namespace = "berth"
