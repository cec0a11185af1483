package buildkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv/buildx"
	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/berthd/berthd/integration/internal/netnstest"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// RUN steps on berthd's networks (build-facts.md §3.2): by default each RUN gets a namespace of its own
// with an address on the default bridge, from which it reaches a container on that bridge by IP and the
// outside world through berthd's NAT; --network none has loopback only, --network host is berthd's own
// namespace. Nothing of a build's sandboxes stays behind, whether the RUN succeeded, failed or the
// build was cancelled.
func TestBuildKitRunNetworks(t *testing.T) {
	cfg := buildx.Need(t)
	d := daemon.NewWithBusybox(t)

	d.MustDocker(t, "run", "-d", "--name", "web", "busybox", "sh", "-c",
		"mkdir /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www")
	webIP := d.MustDocker(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web")
	subnet, err := netip.ParsePrefix(d.MustDocker(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge"))
	assert.NilError(t, err)
	before := netSnapshot(t, d)

	other := netnstest.OtherMachine(t, d.NetNS, d.Dir)
	peers := netServeIn(t, other, "10.99.0.2:8080", "hello-from-outside")

	t.Run("default", func(t *testing.T) {
		start := time.Now()
		out := netBuild(t, d, cfg, fmt.Sprintf(`FROM busybox AS run
RUN ip -o -4 addr show > /addrs && ip -o link > /links && wget -q -O /web http://%s/ && wget -q -O /outside http://10.99.0.2:8080/
FROM scratch
COPY --from=run /addrs /links /web /outside /
`, webIP))
		addrs := netReadFile(t, out, "addrs")
		ifAddr := netIfAddr(t, addrs, "eth0")
		assert.Check(t, subnet.Contains(ifAddr), "RUN address %s not in the bridge subnet %s:\n%s", ifAddr, subnet, addrs)
		assert.Check(t, !strings.Contains(netReadFile(t, out, "links"), "docker0"), "RUN sees berthd's interfaces")
		assert.Check(t, is.Equal(netReadFile(t, out, "web"), "hello-from-web\n"))
		assert.Check(t, is.Equal(netReadFile(t, out, "outside"), "hello-from-outside"))
		// The other machine saw berthd's address: the RUN's went out through the bridge's NAT.
		assert.Check(t, is.DeepEqual(peers.list(), []string{"10.99.0.1"}))
		// dockerd logs network events for containers only: a RUN's sandbox is not one.
		evs := d.MustDocker(t, "events", "--since", fmt.Sprintf("%d.%09d", start.Unix(), start.Nanosecond()), "--until", fmt.Sprint(time.Now().Unix()+1),
			"--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.container}}")
		assert.Check(t, is.Equal(evs, ""))
		netCheckClean(t, d, before)
	})

	t.Run("parallel stages", func(t *testing.T) {
		// Three RUNs at once (BuildKit runs independent stages in parallel): three sandboxes, three
		// addresses, each reaching the web container. --network default is the default's name.
		var df strings.Builder
		for i := 0; i < 3; i++ {
			fmt.Fprintf(&df, "FROM busybox AS s%d\nRUN echo stage%d && ip -o -4 addr show eth0 > /addr && wget -q -O /web http://%s/ && sleep 2\n", i, i, webIP)
		}
		df.WriteString("FROM scratch\n")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(&df, "COPY --from=s%d /addr /addr%d\nCOPY --from=s%d /web /web%d\n", i, i, i, i)
		}
		out := netBuild(t, d, cfg, df.String(), "--network", "default")
		seen := map[netip.Addr]bool{}
		for i := 0; i < 3; i++ {
			a := netIfAddr(t, netReadFile(t, out, fmt.Sprintf("addr%d", i)), "eth0")
			assert.Check(t, subnet.Contains(a), a)
			seen[a] = true
			assert.Check(t, is.Equal(netReadFile(t, out, fmt.Sprintf("web%d", i)), "hello-from-web\n"))
		}
		assert.Check(t, is.Len(seen, 3), "addresses: %v", seen)
		netCheckClean(t, d, before)
	})

	t.Run("none", func(t *testing.T) {
		out := netBuild(t, d, cfg, `FROM busybox AS run
RUN ip -o link > /links && (wget -q -T 2 -O /web http://`+webIP+`/ || echo unreachable > /web)
FROM scratch
COPY --from=run /links /web /
`, "--network", "none")
		links := netReadFile(t, out, "links")
		assert.Check(t, is.Equal(strings.Count(links, "\n"), 1), "links:\n%s", links)
		assert.Check(t, is.Contains(links, "lo:"))
		assert.Check(t, is.Equal(netReadFile(t, out, "web"), "unreachable\n"))
		netCheckClean(t, d, before)
	})

	t.Run("host", func(t *testing.T) {
		out := netBuild(t, d, cfg, `FROM busybox AS run
RUN ip -o link > /links && ip -o -4 addr show > /addrs
FROM scratch
COPY --from=run /links /addrs /
`, "--network", "host", "--allow", "network.host")
		assert.Check(t, is.Contains(netReadFile(t, out, "links"), "docker0"))
		assert.Check(t, is.Contains(netReadFile(t, out, "addrs"), "10.99.0.1/24"))
		netCheckClean(t, d, before)
	})

	t.Run("failing RUN", func(t *testing.T) {
		res := netBuildResult(t, d, cfg, `FROM busybox
RUN ip -o -4 addr show eth0 && exit 3
`)
		assert.Check(t, res.ExitCode != 0, res.Combined())
		assert.Check(t, is.Contains(res.Combined(), "exit code: 3"))
		assert.Check(t, is.Contains(res.Combined(), "inet "+subnet.Addr().String()[:strings.LastIndex(subnet.Addr().String(), ".")]))
		netCheckClean(t, d, before)
	})

	t.Run("cancelled", func(t *testing.T) {
		dir := netContext(t, "FROM busybox\nRUN sleep 300\n")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", "buildx", "build", "--progress", "plain", "--no-cache", dir)
		cmd.Env = netEnv(d, cfg)
		var outb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &outb, &outb
		assert.NilError(t, cmd.Start())
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		// The RUN holds a sandbox on the bridge while it sleeps.
		daemon.WaitFor(t, 2*time.Minute, "the RUN's endpoint on the bridge", func() bool {
			select {
			case <-done:
				t.Fatalf("build ended before it was cancelled:\n%s", outb.String())
			default:
			}
			return len(netSnapshot(t, d).endpoints) > len(before.endpoints)
		})
		cancel()
		<-done
		daemon.WaitFor(t, time.Minute, "the cancelled RUN's sandbox released", func() bool {
			return netSnapshot(t, d).equal(before)
		})
		netCheckClean(t, d, before)
	})
}

// Under --bridge=none a RUN gets what `docker run` then gets, a namespace with loopback only; its
// resolv.conf carries the daemon's --dns, as dockerd's build containers'.
func TestBuildKitRunWithoutDefaultBridge(t *testing.T) {
	cfg := buildx.Need(t)
	d := daemon.NewWithBusybox(t, "--bridge=none", "--dns", "10.1.2.3", "--dns-search", "build.example")
	before := netSnapshot(t, d)
	out := netBuild(t, d, cfg, `FROM busybox AS run
RUN ip -o link > /links && cat /etc/resolv.conf > /resolv
FROM scratch
COPY --from=run /links /resolv /
`)
	links := netReadFile(t, out, "links")
	assert.Check(t, is.Equal(strings.Count(links, "\n"), 1), "links:\n%s", links)
	assert.Check(t, is.Contains(links, "lo:"))
	resolv := netReadFile(t, out, "resolv")
	assert.Check(t, is.Contains(resolv, "nameserver 10.1.2.3"))
	assert.Check(t, is.Contains(resolv, "search build.example"))
	netCheckClean(t, d, before)
}

// A RUN's sandbox outlives a berthd killed mid-step only until berthd starts again: its endpoint, veth
// and namespace file are gone before the API answers. A berthd stopped mid-step stops cleanly, and
// leaves nothing behind either.
func TestBuildKitRunSandboxAfterCrash(t *testing.T) {
	cfg := buildx.Need(t)
	d := daemon.NewWithBusybox(t)
	before := netSnapshot(t, d)
	for _, stop := range []func(testing.TB){d.Kill, d.Stop} {
		cmd := exec.Command("docker", "buildx", "build", "--progress", "plain", "--no-cache", netContext(t, "FROM busybox\nRUN sleep 300\n"))
		cmd.Env = netEnv(d, cfg)
		var outb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &outb, &outb
		assert.NilError(t, cmd.Start())
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		daemon.WaitFor(t, 2*time.Minute, "the RUN's endpoint on the bridge", func() bool {
			select {
			case <-done:
				t.Fatalf("build ended early:\n%s", outb.String())
			default:
			}
			return len(netSnapshot(t, d).endpoints) > len(before.endpoints)
		})
		stop(t)
		_ = cmd.Process.Kill()
		<-done
		d.Start(t)
		netCheckClean(t, d, before)
	}
}

// netState is what a build may leave behind: endpoints on the bridge (network inspect), host-side
// veths and namespace files in berthd's exec root.
type netState struct {
	endpoints, veths, nsFiles []string
}

func (s netState) equal(o netState) bool {
	return fmt.Sprint(s) == fmt.Sprint(o)
}

func netSnapshot(t *testing.T, d *daemon.Daemon) netState {
	t.Helper()
	var s netState
	if res := d.Docker(t, "network", "inspect", "-f", "{{range $id, $e := .Containers}}{{$id}} {{end}}", "bridge"); res.ExitCode == 0 {
		s.endpoints = strings.Fields(res.Stdout)
	} else {
		assert.Assert(t, is.Contains(res.Stderr, "network bridge not found")) // --bridge=none
	}
	links, err := d.InNetNS(t, "ip", "-o", "link", "show", "type", "veth")
	assert.NilError(t, err, links)
	for _, l := range strings.Split(strings.TrimSpace(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			if v := strings.Split(strings.TrimSuffix(f[1], ":"), "@")[0]; v != "vext" { // the other machine's link
				s.veths = append(s.veths, v)
			}
		}
	}
	ents, _ := os.ReadDir(filepath.Join(d.ExecRoot, "netns"))
	for _, e := range ents {
		s.nsFiles = append(s.nsFiles, e.Name())
	}
	return s
}

// netCheckClean asserts that the builds since before left no endpoint, veth or namespace file.
func netCheckClean(t *testing.T, d *daemon.Daemon, before netState) {
	t.Helper()
	after := netSnapshot(t, d)
	assert.Check(t, is.DeepEqual(after.endpoints, before.endpoints), "endpoints on the bridge")
	assert.Check(t, is.DeepEqual(after.nsFiles, before.nsFiles), "namespace files")
	assert.Check(t, is.DeepEqual(after.veths, before.veths), "veths")
}

func netEnv(d *daemon.Daemon, cfg string) []string {
	return append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+cfg, "DOCKER_CONTEXT=")
}

// netContext writes a build context holding dockerfile.
func netContext(t *testing.T, dockerfile string) string {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	return dir
}

// netBuildResult builds dockerfile with buildx (no cache: every RUN runs) and returns the CLI's result.
func netBuildResult(t *testing.T, d *daemon.Daemon, cfg, dockerfile string, args ...string) daemon.Result {
	t.Helper()
	dir := netContext(t, dockerfile)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append(append([]string{"buildx", "build", "--progress", "plain", "--no-cache"}, args...), dir)
	cmd := exec.CommandContext(ctx, "docker", full...)
	cmd.Env = netEnv(d, cfg)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := daemon.Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.ExitCode = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", full, err)
	}
	return res
}

// netBuild builds dockerfile into a local directory and returns it.
func netBuild(t *testing.T, d *daemon.Daemon, cfg, dockerfile string, args ...string) string {
	t.Helper()
	out := t.TempDir()
	res := netBuildResult(t, d, cfg, dockerfile, append(args, "--output", "type=local,dest="+out)...)
	assert.Assert(t, res.ExitCode == 0, "build: %s\n%s", res.Combined(), d.Log())
	return out
}

func netReadFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	assert.Check(t, err)
	return string(b)
}

// netIfAddr finds ifname's IPv4 address in `ip -o -4 addr show` output.
func netIfAddr(t *testing.T, out, ifname string) netip.Addr {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == ifname && f[2] == "inet" {
			p, err := netip.ParsePrefix(f[3])
			assert.NilError(t, err)
			return p.Addr()
		}
	}
	t.Fatalf("no IPv4 address on %s in:\n%s", ifname, out)
	return netip.Addr{}
}

// netPeerLog records the source addresses a server saw.
type netPeerLog struct {
	mu    sync.Mutex
	peers []string
}

func (p *netPeerLog) add(a string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peers = append(p.peers, a)
}

func (p *netPeerLog) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.peers...)
}

// netServeIn serves body over HTTP on addr inside the namespace file nsPath (the socket is made there; the
// server's goroutines run anywhere) and records each client's address.
func netServeIn(t *testing.T, nsPath, addr, body string) *netPeerLog {
	t.Helper()
	l, err := netnstest.Listen(nsPath, addr)
	assert.NilError(t, err)
	peers := &netPeerLog{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host, _, _ := net.SplitHostPort(req.RemoteAddr)
		peers.add(host)
		_, _ = io.WriteString(w, body)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return peers
}
