// Package network holds end-to-end tests of networking: berthd runs in a network namespace the harness
// made, so bridges, veths and iptables rules never reach the host; "another machine" is a second
// namespace joined to berthd's by a veth pair.
package network

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/mkimage"
	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func newDaemon(t *testing.T, extra ...string) *daemon.Daemon {
	t.Helper()
	d := daemon.New(t)
	d.Start(t, extra...)
	img, err := mkimage.BusyboxImage("busybox:latest")
	assert.NilError(t, err)
	var b bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&b, []mkimage.Image{img}))
	res := d.DockerStdin(t, b.Bytes(), "load")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	return d
}

func mustDocker(t *testing.T, d *daemon.Daemon, args ...string) string {
	t.Helper()
	res := d.Docker(t, args...)
	assert.Equal(t, res.ExitCode, 0, "docker %v: %s", args, res.Combined())
	return strings.TrimSpace(res.Stdout)
}

// inNS runs a command in berthd's namespace (the "host" of the containers).
func inNS(t *testing.T, d *daemon.Daemon, args ...string) string {
	t.Helper()
	out, err := d.InNetNS(t, args...)
	assert.NilError(t, err, "%v: %s", args, out)
	return out
}

func retry(t *testing.T, what string, f func() (string, bool)) string {
	t.Helper()
	var last string
	for i := 0; i < 50; i++ {
		out, ok := f()
		if ok {
			return out
		}
		last = out
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
	return ""
}

func TestDefaultBridgeAndPredefined(t *testing.T) {
	d := newDaemon(t)
	out := mustDocker(t, d, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
	assert.Check(t, is.Equal(out, "bridge bridge local\nhost host local\nnone null local"))
	out = mustDocker(t, d, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{index .Options \"com.docker.network.bridge.name\"}}")
	assert.Check(t, is.Equal(out, "172.17.0.0/16 172.17.0.1 docker0"))
	assert.Check(t, is.Contains(inNS(t, d, "ip", "addr", "show", "docker0"), "172.17.0.1/16"))
	rules := inNS(t, d, "iptables-save")
	for _, r := range []string{"-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD", "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
		"-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2", "-A DOCKER-FORWARD -i docker0 -j ACCEPT"} {
		assert.Check(t, is.Contains(rules, r))
	}
	// DOCKER-USER is consulted first.
	fwd := inNS(t, d, "iptables", "-S", "FORWARD")
	assert.Check(t, strings.Index(fwd, "DOCKER-USER") < strings.Index(fwd, "DOCKER-FORWARD"), fwd)

	// A container on the default bridge gets an address, a route, and reaches another by IP.
	mustDocker(t, d, "run", "-d", "--name", "srv", "busybox", "sh", "-c", "while true; do echo hello | nc -l -p 80; done")
	ip := mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv")
	assert.Check(t, strings.HasPrefix(ip, "172.17.0."), ip)
	out = mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.Gateway}} {{.NetworkSettings.Networks.bridge.IPPrefixLen}}", "srv")
	assert.Check(t, is.Equal(out, "172.17.0.1 16"))
	got := retry(t, "reach srv", func() (string, bool) {
		res := d.Docker(t, "run", "--rm", "busybox", "nc", "-w", "2", ip, "80")
		return res.Combined(), strings.Contains(res.Stdout, "hello")
	})
	assert.Check(t, is.Contains(got, "hello"))
	out = mustDocker(t, d, "network", "inspect", "bridge", "--format", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}")
	assert.Check(t, is.Equal(out, "srv "+ip+"/16"))
	mustDocker(t, d, "rm", "-f", "srv")
	out = mustDocker(t, d, "network", "inspect", "bridge", "--format", "{{len .Containers}}")
	assert.Check(t, is.Equal(out, "0"))
	// No veth left once the container is gone.
	assert.Check(t, !strings.Contains(inNS(t, d, "ip", "link"), "veth"))
}

func TestNetworkAPIErrors(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := d.Client(t)
	ctx := context.Background()
	_, err := c.NetworkCreate(ctx, "bridge", network.CreateOptions{})
	assert.Check(t, is.ErrorContains(err, "operation is not permitted on predefined bridge network"))
	r, err := c.NetworkCreate(ctx, "n1", network.CreateOptions{Labels: map[string]string{"a": "b"}})
	assert.NilError(t, err)
	assert.Check(t, is.Len(r.ID, 64))
	_, err = c.NetworkCreate(ctx, "n1", network.CreateOptions{})
	assert.Check(t, is.ErrorContains(err, "network with name n1 already exists"))
	assert.Check(t, errdefs.IsConflict(err))
	n, err := c.NetworkInspect(ctx, "n1", network.InspectOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(n.IPAM.Config[0].Subnet, "172.18.0.0/16"))
	assert.Check(t, is.Equal(n.IPAM.Config[0].Gateway, "172.18.0.1"))
	_, err = c.NetworkCreate(ctx, "n2", network.CreateOptions{IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: "172.18.5.0/24"}}}})
	assert.Check(t, is.ErrorContains(err, "invalid pool request: Pool overlaps with other one on this address space"))
	_, err = c.NetworkCreate(ctx, "n2", network.CreateOptions{IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.9.0.1/24"}}}})
	assert.Check(t, is.ErrorContains(err, "invalid network config:\ninvalid subnet 10.9.0.1/24: it should be 10.9.0.0/24"))
	_, err = c.NetworkInspect(ctx, "nope", network.InspectOptions{})
	assert.Check(t, is.ErrorContains(err, "network nope not found"))
	err = c.NetworkRemove(ctx, "host")
	assert.Check(t, is.ErrorContains(err, "host is a pre-defined network and cannot be removed"))
	l, err := c.NetworkList(ctx, network.ListOptions{Filters: filtersOf("label", "a=b")})
	assert.NilError(t, err)
	assert.Check(t, is.Len(l, 1))
	res := d.Docker(t, "network", "ls", "--filter", "bogus=1")
	assert.Check(t, is.Contains(res.Stderr, "invalid filter 'bogus'"))
	rep, err := c.NetworksPrune(ctx, filtersOf())
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(rep.NetworksDeleted, []string{"n1"}))
	assert.Check(t, !strings.Contains(inNS(t, d, "ip", "link"), "br-"))
}

func TestPublishedPorts(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1::81", "-p", "9000-9001:90-91/udp", "busybox",
		"sh", "-c", "mkdir /w && echo ok > /w/index.html && httpd -f -p 80 -h /w")
	out := mustDocker(t, d, "port", "web", "80")
	assert.Check(t, is.Equal(out, "0.0.0.0:8080"))
	out = mustDocker(t, d, "ps", "--format", "{{.Ports}}")
	assert.Check(t, is.Contains(out, "0.0.0.0:8080->80/tcp"), out)
	// From the "host" itself over loopback and over the bridge gateway, kernel-forwarded.
	for _, addr := range []string{"127.0.0.1:8080", "172.17.0.1:8080"} {
		got := retry(t, "wget "+addr, func() (string, bool) {
			o, err := fetchIn(d.NetNS, addr)
			if err != nil {
				rules, _ := d.InNetNS(t, "iptables-save")
				o = fmt.Sprintf("%v: %s\n%s", err, o, rules)
			}
			return o, err == nil && strings.Contains(o, "ok")
		})
		assert.Check(t, is.Contains(got, "ok"))
	}
	// Hairpin: another container through the host address.
	res := d.Docker(t, "run", "--rm", "busybox", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 172.17.0.1 8080`)
	assert.Check(t, is.Contains(res.Stdout, "ok"), res.Combined())
	// From another machine through berthd's address.
	other, hostAddr := otherMachine(t, d)
	got, err := fetchIn(other, hostAddr+":8080")
	assert.Check(t, err)
	assert.Check(t, is.Contains(got, "ok"))
	// Published on 127.0.0.1 only: reachable over loopback, not from another machine.
	lport := mustDocker(t, d, "port", "web", "81")
	assert.Check(t, strings.HasPrefix(lport, "127.0.0.1:"), lport)
	_, err = fetchIn(other, hostAddr+":"+strings.TrimPrefix(lport, "127.0.0.1:"))
	assert.Check(t, err != nil)
	// UDP through a range.
	// UDP through a range; the server is a socket the test opens in the container's namespace.
	mustDocker(t, d, "run", "-d", "--name", "udp", "-p", "7000-7001:5000-5001/udp", "busybox", "sleep", "300")
	sbox := mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "udp")
	srv, err := listenUDPIn(sbox, ":5001")
	assert.NilError(t, err)
	defer srv.Close()
	assert.NilError(t, udpSend(other, hostAddr+":7001", "ping"))
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := srv.ReadFrom(buf)
	assert.Check(t, err)
	assert.Check(t, is.Equal(string(buf[:n]), "ping"))
	assert.Check(t, strings.HasPrefix(fmt.Sprint(from), "10.99.0.2:"), "source address kept: %v", from)
	// A taken port fails the second start with dockerd's message and leaves nothing running.
	res = d.Docker(t, "run", "-d", "--name", "web2", "-p", "8080:80", "busybox", "sleep", "100")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "Bind for 0.0.0.0:8080 failed: port is already allocated"))
	out = mustDocker(t, d, "inspect", "-f", "{{.State.Running}}", "web2")
	assert.Check(t, is.Equal(out, "false"))
	// A DROP in DOCKER-USER blocks the published port for forwarded traffic.
	inNS(t, d, "iptables", "-I", "DOCKER-USER", "-p", "tcp", "--dport", "80", "-j", "DROP")
	_, err = fetchIn(other, hostAddr+":8080")
	assert.Check(t, err != nil)
	inNS(t, d, "iptables", "-D", "DOCKER-USER", "-p", "tcp", "--dport", "80", "-j", "DROP")
	_, err = fetchIn(other, hostAddr+":8080")
	assert.Check(t, err)
	mustDocker(t, d, "rm", "-f", "web", "web2", "udp")
	rules := inNS(t, d, "iptables-save")
	assert.Check(t, !strings.Contains(rules, "DNAT"), rules)
}

func TestUserNetworksIsolationConnect(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "network", "create", "a")
	mustDocker(t, d, "network", "create", "--internal", "b")
	mustDocker(t, d, "run", "-d", "--name", "sa", "--network", "a", "busybox", "sh", "-c", "while true; do echo A | nc -l -p 80; done")
	ipA := mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.a.IPAddress}}", "sa")
	assert.Check(t, strings.HasPrefix(ipA, "172.18.0."), ipA)
	// Same network: reachable.
	res := d.Docker(t, "run", "--rm", "--network", "a", "busybox", "nc", "-w", "2", ipA, "80")
	assert.Check(t, is.Contains(res.Stdout, "A"), res.Combined())
	// Other network: isolated.
	res = d.Docker(t, "run", "--rm", "--network", "b", "busybox", "nc", "-w", "2", ipA, "80")
	assert.Check(t, !strings.Contains(res.Stdout, "A"), res.Combined())
	// Internal: no default route.
	res = d.Docker(t, "run", "--rm", "--network", "b", "busybox", "ip", "route")
	assert.Check(t, !strings.Contains(res.Stdout, "default"), res.Stdout)
	// Connect a running container: a second interface appears; disconnect removes it.
	mustDocker(t, d, "run", "-d", "--name", "cc", "--network", "b", "busybox", "sleep", "300")
	mustDocker(t, d, "network", "connect", "a", "cc")
	out := mustDocker(t, d, "exec", "cc", "ip", "-o", "-4", "addr")
	assert.Check(t, is.Contains(out, "eth1"))
	res = d.Docker(t, "exec", "cc", "nc", "-w", "2", ipA, "80")
	assert.Check(t, is.Contains(res.Stdout, "A"), res.Combined())
	res = d.Docker(t, "network", "rm", "a")
	assert.Check(t, is.Contains(res.Stderr, "has active endpoints"))
	mustDocker(t, d, "network", "disconnect", "a", "cc")
	out = mustDocker(t, d, "exec", "cc", "ip", "-o", "-4", "addr")
	assert.Check(t, !strings.Contains(out, "eth1"), out)
	// Leaving the first network and joining another reuses eth0 (no clash with a remaining eth1), and
	// the first non-internal network joined gives the default route.
	mustDocker(t, d, "network", "connect", "a", "cc")
	mustDocker(t, d, "network", "disconnect", "b", "cc")
	mustDocker(t, d, "network", "connect", "bridge", "cc")
	out = mustDocker(t, d, "exec", "cc", "ip", "-o", "-4", "addr")
	assert.Check(t, strings.Contains(out, "eth0") && strings.Contains(out, "eth1"), out)
	out = mustDocker(t, d, "exec", "cc", "ip", "route")
	assert.Check(t, is.Contains(out, "default via 172.18.0.1"), out)
	mustDocker(t, d, "network", "disconnect", "bridge", "cc")
	mustDocker(t, d, "network", "disconnect", "a", "cc")
	mustDocker(t, d, "network", "connect", "b", "cc")
	// Stopped container: stored, applied at start.
	mustDocker(t, d, "stop", "-t", "0", "cc")
	mustDocker(t, d, "network", "connect", "a", "cc")
	mustDocker(t, d, "start", "cc")
	out = mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.a.IPAddress}}", "cc")
	assert.Check(t, strings.HasPrefix(out, "172.18.0."), out)
	mustDocker(t, d, "rm", "-f", "sa", "cc")
	mustDocker(t, d, "network", "rm", "a", "b")
	rules := inNS(t, d, "iptables-save")
	assert.Check(t, !strings.Contains(rules, "br-"), "rules of removed networks left:\n%s", rules)
	assert.Check(t, !strings.Contains(inNS(t, d, "ip", "link"), "br-"))
}

func TestRestartKeepsNetworks(t *testing.T) {
	d := newDaemon(t)
	id := mustDocker(t, d, "network", "create", "--subnet", "10.20.0.0/24", "keep")
	mustDocker(t, d, "run", "-d", "--name", "rr", "--network", "keep", "-p", "8099:80", "busybox", "sleep", "300")
	assert.Check(t, is.Contains(inNS(t, d, "iptables-save"), "--dport 8099"))
	d.Kill(t)
	d.Start(t)
	out := mustDocker(t, d, "network", "inspect", "-f", "{{.Id}} {{(index .IPAM.Config 0).Subnet}}", "keep")
	assert.Check(t, is.Equal(out, id+" 10.20.0.0/24"))
	// No stale veth from the killed run.
	links := inNS(t, d, "ip", "-o", "link")
	assert.Check(t, !strings.Contains(links, "veth"), links)
	// Rules rebuilt once, not doubled; the killed run's port rules are gone.
	rules := inNS(t, d, "iptables-save")
	assert.Check(t, !strings.Contains(rules, "--dport 8099"), rules)
	assert.Check(t, !strings.Contains(rules, "--dport 80 "), rules)
	for _, r := range []string{"-A FORWARD -j DOCKER-USER", "-A POSTROUTING -s 10.20.0.0/24 ! -o br-" + id[:12] + " -j MASQUERADE",
		"-A DOCKER-FORWARD -j DOCKER-CT", "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"} {
		assert.Check(t, is.Equal(strings.Count(rules, r+"\n"), 1), "%s\n%s", r, rules)
	}
	mustDocker(t, d, "start", "rr")
	out = mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.keep.IPAddress}}", "rr")
	assert.Check(t, strings.HasPrefix(out, "10.20.0."), out)
	mustDocker(t, d, "rm", "-f", "rr")
}

// TestHostUntouched checks the harness contract: nothing of berthd's networking shows in the host's
// namespace.
func TestHostUntouched(t *testing.T) {
	before, _ := exec.Command("ip", "-o", "link").Output()
	d := newDaemon(t)
	mustDocker(t, d, "run", "--rm", "busybox", "true")
	after, _ := exec.Command("ip", "-o", "link").Output()
	assert.Check(t, !strings.Contains(string(after), "docker0"))
	assert.Check(t, is.Equal(strings.Count(string(before), "docker0"), 0))
}

func filtersOf(kv ...string) filters.Args {
	f := filters.NewArgs()
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

func TestLiveRestoreKeepsAddresses(t *testing.T) {
	d := newDaemon(t, "--live-restore")
	mustDocker(t, d, "network", "create", "lr")
	mustDocker(t, d, "run", "-d", "--name", "srv", "--network", "lr", "-p", "8090:80", "busybox", "sh", "-c",
		"mkdir /w && echo live > /w/index.html && httpd -f -p 80 -h /w")
	before := mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.lr.IPAddress}} {{.NetworkSettings.Networks.lr.EndpointID}}", "srv")
	d.Kill(t)
	d.Start(t, "--live-restore")
	after := mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.lr.IPAddress}} {{.NetworkSettings.Networks.lr.EndpointID}}", "srv")
	assert.Check(t, is.Equal(after, before))
	got := retry(t, "published port after restart", func() (string, bool) {
		o, err := fetchIn(d.NetNS, "127.0.0.1:8090")
		return fmt.Sprint(o, err), err == nil && strings.Contains(o, "live")
	})
	assert.Check(t, is.Contains(got, "live"))
	// The port is still held: a second container cannot take it.
	res := d.Docker(t, "run", "-d", "--name", "other", "-p", "8090:80", "busybox", "sleep", "10")
	assert.Check(t, is.Contains(res.Stderr, "port is already allocated"), res.Combined())
	mustDocker(t, d, "rm", "-f", "srv", "other")
	out := inNS(t, d, "iptables-save")
	assert.Check(t, !strings.Contains(out, "DNAT"), out)
	assert.Check(t, !strings.Contains(out, "/32"), "a restored endpoint's rules were left behind:\n%s", out)
}

func TestPublishAllEventsAndStats(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	since := fmt.Sprint(time.Now().Unix() - 1)
	mustDocker(t, d, "network", "create", "ev")
	mustDocker(t, d, "run", "-d", "--name", "pa", "--expose", "80", "--expose", "81/udp", "-P", "-p", "82", "busybox", "sleep", "300")
	out := mustDocker(t, d, "port", "pa")
	lines := strings.Split(out, "\n")
	assert.Check(t, is.Len(lines, 3), out)
	for _, l := range lines {
		assert.Check(t, strings.Contains(l, " -> 0.0.0.0:"), l)
	}
	insp, err := c.ContainerInspect(ctx, "pa")
	assert.NilError(t, err)
	assert.Check(t, is.Len(insp.NetworkSettings.Ports["81/udp"], 1))
	assert.Check(t, insp.NetworkSettings.Ports["80/tcp"][0].HostPort != "")
	res := d.Docker(t, "port", "pa", "90")
	assert.Check(t, is.Contains(res.Stderr, "No public port '90' published for pa"))
	ps := mustDocker(t, d, "ps", "--format", "{{.Ports}}")
	assert.Check(t, is.Contains(ps, "->80/tcp"), ps)
	// Host networking publishes nothing, and says so as dockerd.
	res = d.Docker(t, "run", "--rm", "--network", "host", "-p", "80:80", "busybox", "true")
	assert.Check(t, is.Contains(res.Stderr, "Published ports are discarded when using host network mode"), res.Combined())
	// Stats report the container's interfaces.
	st := mustDocker(t, d, "stats", "--no-stream", "--format", "{{.NetIO}}", "pa")
	assert.Check(t, st != "" && st != "0B / 0B" && st != "--", st)

	mustDocker(t, d, "network", "connect", "ev", "pa")
	mustDocker(t, d, "network", "disconnect", "ev", "pa")
	mustDocker(t, d, "rm", "-f", "pa")
	mustDocker(t, d, "network", "rm", "ev")
	until := fmt.Sprint(time.Now().Unix() + 1)
	ev := mustDocker(t, d, "events", "--since", since, "--until", until, "--filter", "type=network", "--filter", "network=ev",
		"--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.type}} {{if .Actor.Attributes.container}}c{{end}}")
	assert.Check(t, is.Equal(ev, "create ev bridge \nconnect ev bridge c\ndisconnect ev bridge c\ndestroy ev bridge"))
}

func TestBridgeNoneAndDaemonFlags(t *testing.T) {
	d := newDaemon(t, "--bridge=none")
	out := mustDocker(t, d, "network", "ls", "--format", "{{.Name}}")
	assert.Check(t, is.Equal(out, "host\nnone"))
	out = mustDocker(t, d, "run", "--rm", "busybox", "ls", "/sys/class/net")
	assert.Check(t, is.Equal(out, "lo"))
	assert.Check(t, !strings.Contains(inNS(t, d, "ip", "link"), "docker0"))
	// User networks still work.
	mustDocker(t, d, "network", "create", "u")
	out = mustDocker(t, d, "run", "--rm", "--network", "u", "busybox", "ls", "/sys/class/net")
	assert.Check(t, is.Equal(out, "eth0\nlo"))
	d.Stop(t)

	// --bip and --mtu configure docker0; ipv6 is refused by name.
	d.Start(t, "--bip", "10.55.0.1/24", "--mtu", "1400")
	out = mustDocker(t, d, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{index .Options \"com.docker.network.driver.mtu\"}}")
	assert.Check(t, is.Equal(out, "10.55.0.0/24 10.55.0.1 1400"))
	out = mustDocker(t, d, "run", "--rm", "busybox", "cat", "/sys/class/net/eth0/mtu")
	assert.Check(t, is.Equal(out, "1400"))
	d.Stop(t)
	err := d.StartWithError("-H", d.Host(), "--ipv6")
	assert.Check(t, err != nil)
	assert.Check(t, is.Contains(d.Log(), "ipv6 is not supported by berthd"))
}

func TestEndpointSettingsAndClientCalls(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	mustDocker(t, d, "network", "create", "--subnet", "10.33.0.0/24", "--ip-range", "10.33.0.128/25", "--gateway", "10.33.0.254", "st")
	mustDocker(t, d, "run", "-d", "--name", "fix", "--network", "st", "--ip", "10.33.0.10", "--mac-address", "02:42:0a:21:00:0a",
		"--network-alias", "web", "busybox", "sleep", "300")
	out := mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.st.IPAddress}} {{.NetworkSettings.Networks.st.MacAddress}} {{.NetworkSettings.Networks.st.Gateway}} {{.NetworkSettings.Networks.st.Aliases}} {{.NetworkSettings.Networks.st.IPAMConfig.IPv4Address}}", "fix")
	assert.Check(t, is.Equal(out, "10.33.0.10 02:42:0a:21:00:0a 10.33.0.254 [web] 10.33.0.10"))
	out = mustDocker(t, d, "exec", "fix", "ip", "-o", "-4", "addr", "show", "eth0")
	assert.Check(t, is.Contains(out, "10.33.0.10/24"))
	// Dynamic addresses come from the ip-range.
	mustDocker(t, d, "run", "-d", "--name", "dyn", "--network", "st", "busybox", "sleep", "300")
	out = mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.Networks.st.IPAddress}}", "dyn")
	assert.Check(t, strings.HasPrefix(out, "10.33.0.1") && out >= "10.33.0.128", out)
	// A taken static address, --ip on the default bridge, and a second connect are refused as dockerd.
	res := d.Docker(t, "run", "-d", "--name", "dup", "--network", "st", "--ip", "10.33.0.10", "busybox", "sleep", "300")
	assert.Check(t, is.Contains(res.Stderr, "Address already in use"), res.Combined())
	res = d.Docker(t, "run", "--rm", "--ip", "172.17.0.50", "busybox", "true")
	assert.Check(t, is.Contains(res.Stderr, "user specified IP address is supported on user defined networks only"), res.Combined())
	err := c.NetworkConnect(ctx, "st", "dyn", nil)
	assert.Check(t, is.ErrorContains(err, "endpoint with name dyn already exists in network st"))
	// The moby client's connect/disconnect on a running container.
	assert.NilError(t, c.NetworkConnect(ctx, "bridge", "dyn", &network.EndpointSettings{}))
	n, err := c.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(n.Containers, 1))
	assert.NilError(t, c.NetworkDisconnect(ctx, "bridge", "dyn", false))
	err = c.NetworkDisconnect(ctx, "bridge", "dyn", false)
	assert.Check(t, is.ErrorContains(err, "is not connected to"))
	err = c.NetworkConnect(ctx, "nope", "dyn", nil)
	assert.Check(t, is.ErrorContains(err, "network nope not found"))
	// docker system prune removes unused networks (its build-cache step is another area's).
	mustDocker(t, d, "network", "create", "unused")
	res = d.Docker(t, "system", "prune", "-f")
	assert.Check(t, is.Contains(res.Stdout, "Deleted Networks:\nunused\n"), res.Combined())
	out = mustDocker(t, d, "network", "ls", "--filter", "name=unused", "-q")
	assert.Check(t, is.Equal(out, ""))
	mustDocker(t, d, "rm", "-f", "fix", "dyn", "dup")
}

// TestPoolsSkipHostRoutes: a block the host already routes on a link is not handed to a network.
func TestPoolsSkipHostRoutes(t *testing.T) {
	d := daemon.New(t)
	inNS(t, d, "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
	inNS(t, d, "ip", "addr", "add", "172.18.3.1/24", "dev", "lan0")
	inNS(t, d, "ip", "link", "set", "lan0", "up")
	d.Start(t)
	out := mustDocker(t, d, "network", "create", "p1")
	n := mustDocker(t, d, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", out)
	assert.Check(t, is.Equal(n, "172.19.0.0/16"))
}
