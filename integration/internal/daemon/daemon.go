// Package daemon is the integration tests' harness: it builds bin/berthd once per test binary, starts it
// in short-lived temp dirs with its own supervised containerd, its own API socket and its own plugin dirs,
// gives tests a moby Go client and a way to run the real docker CLI against it, and tears everything down
// (berthd, its containerd, shims, mounts, dirs) when the test ends.
//
// berthd runs in a network namespace of its own (NetNS, a bind-mounted file under Dir, loopback up), so
// its bridges, veths, sysctls and iptables rules never reach the host's namespace and vanish with the
// test. A daemon started with a tcp:// listener, with HostNetwork set, or in a test that started a
// registry on the host's loopback (distribution/testutil sets BERTHD_TEST_HOST_LOOPBACK) runs in the
// host's namespace instead, with --bridge=none --iptables=false --ip-forward=false (nothing is created
// or changed there).
package daemon

import (
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"
)

// Daemon is one berthd under test.
type Daemon struct {
	// Dir holds everything below; short, because unix socket paths must stay under 108 bytes.
	Dir            string
	Root, ExecRoot string
	Sock, Pidfile  string
	// PluginSocketDir and PluginSpecDir are private to this daemon (never the host's).
	PluginSocketDir, PluginSpecDir string
	// ConfigFile is passed as --config-file; write it before Start to test daemon.json.
	ConfigFile string
	// Env is added to berthd's environment.
	Env []string
	// NetNS is the network namespace file berthd runs in.
	NetNS string
	// HostNetwork runs berthd in the host's namespace with --bridge=none --iptables=false --ip-forward=false.
	HostNetwork bool

	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	logPath string
	t       testing.TB
}

// New prepares a daemon (not started) and registers its teardown. Without root or containerd the test is
// skipped, or fails in strict mode (testenv).
func New(t testing.TB) *Daemon {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "containerd", "containerd")
	dir, err := os.MkdirTemp("/tmp", "bd")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Dir:             dir,
		Root:            filepath.Join(dir, "root"),
		ExecRoot:        filepath.Join(dir, "exec"),
		Sock:            filepath.Join(dir, "d.sock"),
		Pidfile:         filepath.Join(dir, "berthd.pid"),
		PluginSocketDir: filepath.Join(dir, "plugins"),
		PluginSpecDir:   filepath.Join(dir, "specs"),
		ConfigFile:      filepath.Join(dir, "daemon.json"),
		logPath:         filepath.Join(dir, "berthd.log"),
		NetNS:           filepath.Join(dir, "netns"),
		// Set by distribution/testutil's registry, which listens on the host's loopback.
		HostNetwork: os.Getenv("BERTHD_TEST_HOST_LOOPBACK") != "",
		t:           t,
	}
	t.Cleanup(d.teardown)
	if err := newNetNS(d.NetNS); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.PluginSocketDir, d.PluginSpecDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// newNetNS creates a network namespace bound on path with loopback up.
func newNetNS(path string) error {
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		return err
	}
	if out, err := exec.Command("unshare", "--net="+path, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("create netns: %v: %s", err, out)
	}
	return nil
}

// InNetNS runs a command in berthd's network namespace and returns its combined output.
func (d *Daemon) InNetNS(t testing.TB, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + d.NetNS, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// hostNetwork reports whether berthd must run in the host's namespace: the test asked, or it listens on
// TCP (the test reaches it over the host's loopback).
func (d *Daemon) hostNetwork(args []string) bool {
	if d.HostNetwork {
		return true
	}
	for _, a := range args {
		if strings.HasPrefix(a, "tcp://") || strings.HasPrefix(a, "--metrics-addr") {
			return true
		}
	}
	return false
}

// Host is the DOCKER_HOST value.
func (d *Daemon) Host() string { return "unix://" + d.Sock }

// Args is the command line berthd runs with before extra arguments.
func (d *Daemon) Args() []string {
	args := []string{
		"--data-root", d.Root, "--exec-root", d.ExecRoot, "--pidfile", d.Pidfile,
		"--plugins-socket-dir", d.PluginSocketDir, "--plugins-spec-dir", d.PluginSpecDir,
		"--config-file", d.ConfigFile, "--debug",
	}
	return args
}

// Start starts berthd with -H on its socket plus extra arguments, and waits until /_ping answers.
func (d *Daemon) Start(t testing.TB, extra ...string) {
	t.Helper()
	if err := d.StartWithError(append([]string{"-H", d.Host()}, extra...)...); err != nil {
		t.Fatalf("berthd did not start: %v\n%s", err, d.Log())
	}
}

// StartWithError starts berthd with exactly Args()+args (no -H added) and waits for /_ping on Sock when
// the arguments listen there; it returns an error if berthd exits or does not answer within 60 s.
func (d *Daemon) StartWithError(args ...string) error {
	cmd, err := d.StartProcess(args...)
	if err != nil {
		return err
	}
	_ = cmd
	return d.WaitReady(60 * time.Second)
}

// StartProcess starts berthd without waiting for it.
func (d *Daemon) StartProcess(args ...string) (*exec.Cmd, error) {
	return d.startCmd(Binary(d.t), append(d.Args(), args...))
}

// StartWrapped starts berthd through `sh -c SCRIPT` where SCRIPT ends by exec'ing "$@" (berthd and its
// arguments); used for socket activation, where LISTEN_PID must be berthd's own pid.
func (d *Daemon) StartWrapped(script string, extraFiles []*os.File, args ...string) (*exec.Cmd, error) {
	full := append([]string{"-c", script, "sh", Binary(d.t)}, append(d.Args(), args...)...)
	return d.startCmdFiles("/bin/sh", full, extraFiles)
}

func (d *Daemon) startCmd(bin string, args []string) (*exec.Cmd, error) {
	return d.startCmdFiles(bin, args, nil)
}

func (d *Daemon) startCmdFiles(bin string, args []string, extraFiles []*os.File) (*exec.Cmd, error) {
	if d.cmd != nil && d.running() {
		return nil, fmt.Errorf("berthd already running")
	}
	if _, err := os.Stat(d.ConfigFile); os.IsNotExist(err) {
		// --config-file is explicit, so it must exist (as in dockerd).
		if err := os.WriteFile(d.ConfigFile, []byte("{}\n"), 0o644); err != nil {
			return nil, err
		}
	}
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if d.hostNetwork(args) {
		args = append(append([]string(nil), args...), "--bridge=none", "--iptables=false", "--ip-forward=false")
	} else {
		// nsenter execs berthd in place: the pid (LISTEN_PID, signals) stays berthd's.
		args = append([]string{"--net=" + d.NetNS, "--", bin}, args...)
		bin = "nsenter"
	}
	fmt.Fprintf(logf, "=== start %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// An empty value keeps berthd on its own supervised containerd even if the machine runs one.
	cmd.Env = append(append(os.Environ(), "BERTHD_SYSTEM_CONTAINERD="), d.Env...)
	cmd.ExtraFiles = extraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	go func() {
		d.exitErr = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return cmd, nil
}

func (d *Daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// WaitReady waits for GET /_ping on Sock.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	hc := d.HTTPClient()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("berthd exited: %v", d.exitErr)
		default:
		}
		resp, err := hc.Get("http://berthd/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("berthd did not answer /_ping within %s", timeout)
}

// Wait waits for berthd to exit and returns its exit code.
func (d *Daemon) Wait(timeout time.Duration) (int, error) {
	select {
	case <-d.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("berthd did not exit within %s", timeout)
	}
	if d.exitErr == nil {
		return 0, nil
	}
	if ee, ok := d.exitErr.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return -1, d.exitErr
}

// Pid is berthd's pid.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Signal sends sig to berthd.
func (d *Daemon) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Stop sends SIGTERM and requires a clean exit (status 0) within 60 s.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.Signal(t, syscall.SIGTERM)
	code, err := d.Wait(60 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("berthd stop: exit %d, %v\n%s", code, err, d.Log())
	}
}

// Kill SIGKILLs berthd (a crash); its containerd and shims keep running, as they would in production.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	d.Signal(t, syscall.SIGKILL)
	if _, err := d.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// Restart stops berthd (SIGTERM) and starts it again with extra arguments.
func (d *Daemon) Restart(t testing.TB, extra ...string) {
	t.Helper()
	d.Stop(t)
	d.Start(t, extra...)
}

// Log is everything berthd logged so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// HTTPClient talks raw HTTP to the API socket (host part of URLs is ignored).
func (d *Daemon) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Sock)
		},
	}}
}

// Client is a moby Go client with version negotiation.
func (d *Daemon) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(d.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ClientAt is a moby client pinned to an API version.
func (d *Daemon) ClientAt(t testing.TB, version string) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(d.Host()), client.WithVersion(version))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Result is the outcome of a docker CLI run.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Combined is stdout then stderr.
func (r Result) Combined() string { return r.Stdout + r.Stderr }

// Docker runs the real docker CLI against this daemon, with a private DOCKER_CONFIG.
func (d *Daemon) Docker(t testing.TB, args ...string) Result {
	t.Helper()
	return d.DockerStdin(t, nil, args...)
}

// DockerStdin is Docker with stdin.
func (d *Daemon) DockerStdin(t testing.TB, stdin []byte, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cfgDir := filepath.Join(d.Dir, "docker-config")
	_ = os.MkdirAll(cfgDir, 0o700)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+cfgDir, "DOCKER_CONTEXT=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			res.ExitCode = ee.ExitCode()
		} else {
			t.Fatalf("docker %v: %v", args, err)
		}
	}
	return res
}

// ContainerdPid is the pid of berthd's supervised containerd, 0 if none.
func (d *Daemon) ContainerdPid() int {
	b, err := os.ReadFile(filepath.Join(d.ExecRoot, "containerd", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func (d *Daemon) teardown() {
	if d.cmd != nil && d.running() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		if _, err := d.Wait(30 * time.Second); err != nil {
			_ = d.cmd.Process.Kill()
			_, _ = d.Wait(10 * time.Second)
		}
	}
	if d.t.Failed() {
		d.t.Logf("berthd log (%s):\n%s", d.logPath, tail(d.Log(), 200))
	}
	killUnder(d.Dir)
	unmountUnder(d.Dir)
	_ = os.RemoveAll(d.Dir)
}

// killUnder kills every process whose command line or cwd mentions dir: the supervised containerd a
// crashed berthd left, and the shims of its containers.
func killUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte(dir)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	time.Sleep(100 * time.Millisecond)
}

// unmountUnder lazily unmounts everything below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = unix.Unmount(mps[i], unix.MNT_DETACH)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary is the berthd binary under test: $BERTHD_BINARY (set by `make test` to bin/berthd), else built
// once per test binary from this module.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("BERTHD_BINARY"); p != "" {
			binPath, buildErr = filepath.Abs(p)
			return
		}
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		modDir := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "berthd-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "berthd")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/berthd")
		cmd.Dir = modDir
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
