// Package benchutil starts berthd and Debian's dockerd side by side for the benchmarks under hack/bench:
// each in fresh temp dirs with its own socket, data root and containerd; dockerd isolated by
// hack/testenv (private mount namespace, empty tmpfs over the host's plugin dirs, --bridge=none
// --iptables=false), polled every 2 ms so start-up figures are not rounded.
// berthd always runs in a network namespace of its own (a file under its dir), so its default bridge and
// iptables rules never reach the host; StartDockerdNet gives dockerd the same, with its networking on.
package benchutil

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthd/berthd/hack/testenv"
)

// Daemon is a running daemon under benchmark.
type Daemon struct {
	Name    string // "berthd" or "dockerd"
	Dir     string
	Sock    string
	Started time.Duration // exec to first 200 on /_ping
	cmd     *exec.Cmd
	done    chan struct{}
}

// Host is the DOCKER_HOST value.
func (d *Daemon) Host() string { return "unix://" + d.Sock }

// Pid is the daemon's pid.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// StartBerthd starts bin at a fresh dir with its own supervised containerd. extra are added flags.
func StartBerthd(bin string, extra ...string) (*Daemon, error) {
	dir, err := os.MkdirTemp("/tmp", "bb")
	if err != nil {
		return nil, err
	}
	return StartBerthdAt(bin, dir, extra...)
}

// StartBerthdAt starts berthd on an existing dir (to measure a restart over existing state).
func StartBerthdAt(bin, dir string, extra ...string) (*Daemon, error) {
	for _, sub := range []string{"plugins", "specs"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o755)
	}
	cfg := filepath.Join(dir, "daemon.json")
	if _, err := os.Stat(cfg); err != nil {
		os.WriteFile(cfg, []byte("{}"), 0o644)
	}
	args := append([]string{"-H", "unix://" + filepath.Join(dir, "d.sock"), "--data-root", filepath.Join(dir, "root"),
		"--exec-root", filepath.Join(dir, "exec"), "-p", filepath.Join(dir, "pid"), "--config-file", cfg,
		"--plugins-socket-dir", filepath.Join(dir, "plugins"), "--plugins-spec-dir", filepath.Join(dir, "specs")}, extra...)
	ns := filepath.Join(dir, "netns")
	if _, err := os.Stat(ns); err != nil {
		if err := os.WriteFile(ns, nil, 0o444); err != nil {
			return nil, err
		}
		if out, err := exec.Command("unshare", "--net="+ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("netns: %v: %s", err, out)
		}
	}
	// nsenter execs berthd in place, so the pid is berthd's.
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns, "--", bin}, args...)...)
	cmd.Env = append(os.Environ(), "BERTHD_SYSTEM_CONTAINERD=")
	return start("berthd", dir, filepath.Join(dir, "d.sock"), cmd)
}

// StartDockerd starts Debian's dockerd as ref-dockerd does. Its containerd is its own managed one, as
// long as no system containerd runs at /run/containerd.
func StartDockerd(extra ...string) (*Daemon, error) {
	dir, err := os.MkdirTemp("/tmp", "bd-ref")
	if err != nil {
		return nil, err
	}
	return StartDockerdAt(dir, extra...)
}

// StartDockerdAt starts dockerd on an existing dir. Plugin sockets named in $BENCH_PLUGIN_SOCKS (space
// separated paths) are bind-mounted into its private /run/docker/plugins.
func StartDockerdAt(dir string, extra ...string) (*Daemon, error) {
	cmd, err := testenv.DockerdCommand(dir, extra...)
	if err != nil {
		return nil, fmt.Errorf("dockerd not installed (Debian package docker.io)")
	}
	return start("dockerd", dir, filepath.Join(dir, "docker.sock"), cmd)
}

// StartDockerdNet starts dockerd with its default bridge, iptables and published ports, in a network
// namespace of its own (as `ref-dockerd start --net`).
func StartDockerdNet(extra ...string) (*Daemon, error) {
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, fmt.Errorf("dockerd not installed (Debian package docker.io)")
	}
	dir, err := os.MkdirTemp("/tmp", "bd-ref")
	if err != nil {
		return nil, err
	}
	script := `ip link set lo up
mount -t tmpfs refplugins /run/docker/plugins 2>/dev/null || { mkdir -p /run/docker/plugins; mount -t tmpfs refplugins /run/docker/plugins; }
for d in /etc/docker/plugins /usr/lib/docker/plugins; do [ -d "$d" ] && mount -t tmpfs refspec "$d"; done
dir=$1; shift
exec dockerd -H "unix://$dir/docker.sock" --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--net", "bash", "-c", script, "_", dir}, extra...)...)
	return start("dockerd", dir, filepath.Join(dir, "docker.sock"), cmd)
}

// NetNS is the network namespace the daemon runs in.
func (d *Daemon) NetNS() string { return fmt.Sprintf("/proc/%d/ns/net", d.Pid()) }

func start(name, dir, sock string, cmd *exec.Cmd) (*Daemon, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	d := &Daemon{Name: name, Dir: dir, Sock: sock, cmd: cmd, done: make(chan struct{})}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); logf.Close(); close(d.done) }()
	hc := d.HTTP()
	for time.Since(t0) < 60*time.Second {
		select {
		case <-d.done:
			return nil, fmt.Errorf("%s exited during start; see %s", name, logf.Name())
		default:
		}
		if resp, err := hc.Get("http://d/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				d.Started = time.Since(t0)
				return d, nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	d.Stop()
	return nil, fmt.Errorf("%s did not answer /_ping within 60s", name)
}

// HTTP is a client for the daemon's socket.
func (d *Daemon) HTTP() *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Sock)
		}}}
}

// Stop sends SIGTERM and waits; a daemon that does not stop in 60 s is killed.
func (d *Daemon) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// Cleanup stops the daemon and removes its dir (unmounting what it left).
func (d *Daemon) Cleanup() {
	d.Stop()
	KillUnder(d.Dir)
	UnmountUnder(d.Dir)
	os.RemoveAll(d.Dir)
}

// RSS is the resident set of pid in bytes.
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// CPU is the user+system CPU time pid has used so far (clock ticks of 10 ms).
func CPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// SelfCPU is the user+system CPU time this process has used so far (the benchmark's clients).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ChildrenCPU sums the CPU time of pid's direct children named like one of names (docker-proxy).
func ChildrenCPU(pid int, names ...string) time.Duration {
	var sum time.Duration
	for _, c := range children(pid, names) {
		sum += CPU(c)
	}
	return sum
}

// ChildrenRSS sums the RSS of pid's direct children named like one of names (the daemon's containerd).
func ChildrenRSS(pid int, names ...string) int64 {
	var sum int64
	for _, c := range children(pid, names) {
		sum += RSS(c)
	}
	return sum
}

// children lists the pids of pid's direct children whose comm is one of names.
func children(pid int, names []string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cpid))
		if err != nil {
			continue
		}
		// Fields after the ")" of the comm: state ppid ...
		s := string(stat)
		i := strings.LastIndex(s, ")")
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		comm := s[strings.Index(s, "(")+1 : i]
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			for _, n := range names {
				if comm == n {
					pids = append(pids, cpid)
				}
			}
		}
	}
	return pids
}

// KillUnder kills processes whose command line mentions dir (a daemon's containerd and shims).
func KillUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	time.Sleep(100 * time.Millisecond)
}

// UnmountUnder detaches every mount below dir, deepest first.
func UnmountUnder(dir string) {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			mps = append(mps, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	for _, m := range mps {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// Median of durations.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// Row prints one comparison line: what, berthd's figure, dockerd's, and berthd/dockerd.
func Row(what string, berthd, dockerd float64, unit string) {
	ratio := "n/a"
	if dockerd > 0 {
		ratio = fmt.Sprintf("%.2fx", berthd/dockerd)
	}
	fmt.Printf("%-48s %12.3f %-5s %12.3f %-5s %8s\n", what, berthd, unit, dockerd, unit, ratio)
}

// Header prints the table header.
func Header(title string) {
	fmt.Printf("\n== %s\n%-48s %18s %18s %8s\n", title, "measure", "berthd", "dockerd", "ratio")
}
