package network

import (
	"net"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// sandboxOf is a running container's namespace file.
func sandboxOf(t *testing.T, d *daemon.Daemon, name string) string {
	t.Helper()
	return mustDocker(t, d, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", name)
}

// query asks 127.0.0.11:53 from inside nsPath, as a program in the container would.
func query(t *testing.T, nsPath, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c, err := dialIn(nsPath, proto, "127.0.0.11:53")
	assert.NilError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	dc := &dns.Conn{Conn: c}
	assert.NilError(t, dc.WriteMsg(m))
	r, err := dc.ReadMsg()
	assert.NilError(t, err, "query %s", name)
	return r
}

func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.PTR:
			out = append(out, v.Ptr)
		case *dns.TXT:
			out = append(out, strings.Join(v.Txt, ""))
		}
	}
	return out
}

func ipOf(t *testing.T, d *daemon.Daemon, name, network string) string {
	t.Helper()
	return mustDocker(t, d, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", name)
}

func TestEmbeddedDNSNames(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "network", "create", "app")
	mustDocker(t, d, "network", "create", "other")
	mustDocker(t, d, "run", "-d", "--name", "web1", "--network", "app", "--network-alias", "web", "--hostname", "h1", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "web2", "--network", "app", "--network-alias", "web", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "hidden", "--network", "other", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "client", "--network", "app", "busybox", "sleep", "300")
	ip1, ip2 := ipOf(t, d, "web1", "app"), ipOf(t, d, "web2", "app")
	id1 := mustDocker(t, d, "inspect", "-f", "{{.Id}}", "web1")[:12]
	ns := sandboxOf(t, d, "client")
	// inspect's DNSNames: name, aliases, short ID, hostname.
	assert.Check(t, is.Equal(mustDocker(t, d, "inspect", "-f", "{{json .NetworkSettings.Networks.app.DNSNames}}", "web1"), `["web1","web",`+strconvQuote(id1)+`,"h1"]`))

	for _, name := range []string{"web1", "WEB1", "web1.app", id1, "h1"} {
		r := query(t, ns, "udp", name, dns.TypeA)
		assert.Check(t, is.Equal(r.Rcode, dns.RcodeSuccess), name)
		assert.Check(t, is.DeepEqual(answers(r), []string{ip1}), name)
	}
	// One alias, two containers: both addresses, in a rotated order.
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		got := answers(query(t, ns, "udp", "web", dns.TypeA))
		sorted := append([]string(nil), got...)
		sort.Strings(sorted)
		want := []string{ip1, ip2}
		sort.Strings(want)
		assert.Assert(t, is.DeepEqual(sorted, want))
		seen[got[0]] = true
	}
	assert.Check(t, is.Len(seen, 2), "order never rotated")
	// TCP answers the same.
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "tcp", "web2", dns.TypeA)), []string{ip2}))
	// Known name, no IPv6 address: empty NOERROR.
	r := query(t, ns, "udp", "web1", dns.TypeAAAA)
	assert.Check(t, is.Equal(r.Rcode, dns.RcodeSuccess))
	assert.Check(t, is.Len(r.Answer, 0))
	// PTR of a container address.
	rev, err := dns.ReverseAddr(ip1)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "udp", rev, dns.TypePTR)), []string{"web1.app."}))
	// A name on another network is not resolved (no upstream answers it: SERVFAIL or NXDOMAIN).
	r = query(t, ns, "udp", "hidden", dns.TypeA)
	assert.Check(t, is.Len(r.Answer, 0))

	// From inside the container, through resolv.conf and the redirection of 127.0.0.11:53.
	out := mustDocker(t, d, "exec", "client", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(out, "nameserver 127.0.0.11\n"))
	assert.Check(t, is.Contains(out, "options ndots:0\n"))
	out = mustDocker(t, d, "exec", "client", "ping", "-c", "1", "-W", "2", "web1")
	assert.Check(t, is.Contains(out, ip1))

	// Names follow connect, disconnect, rename and restart.
	mustDocker(t, d, "network", "connect", "app", "hidden")
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "udp", "hidden", dns.TypeA)), []string{ipOf(t, d, "hidden", "app")}))
	mustDocker(t, d, "network", "disconnect", "app", "hidden")
	assert.Check(t, is.Len(query(t, ns, "udp", "hidden", dns.TypeA).Answer, 0))
	mustDocker(t, d, "rename", "web1", "renamed")
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "udp", "renamed", dns.TypeA)), []string{ip1}))
	assert.Check(t, is.Len(query(t, ns, "udp", "web1", dns.TypeA).Answer, 0))
	mustDocker(t, d, "restart", "-t", "0", "client")
	ns = sandboxOf(t, d, "client")
	assert.Check(t, is.Len(query(t, ns, "udp", "web2", dns.TypeA).Answer, 1))
	mustDocker(t, d, "stop", "-t", "0", "web2")
	assert.Check(t, is.Len(query(t, ns, "udp", "web2", dns.TypeA).Answer, 0))
}

// serveIn runs a DNS server on addr (UDP and TCP) inside nsPath; the returned func stops it.
func serveIn(t *testing.T, nsPath, addr string, h dns.Handler) func() {
	t.Helper()
	pc, err := listenUDPIn(nsPath, addr)
	assert.NilError(t, err)
	ch := make(chan net.Listener, 1)
	go func() {
		runtime.LockOSThread()
		orig, _ := netns.Get()
		target, _ := netns.GetFromPath(nsPath)
		_ = netns.Set(target)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			ln = nil
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- ln
	}()
	ln := <-ch
	assert.Assert(t, ln != nil)
	u := &dns.Server{PacketConn: pc, Handler: h}
	tc := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = u.ActivateAndServe() }()
	go func() { _ = tc.ActivateAndServe() }()
	stop := func() { _ = u.Shutdown(); _ = tc.Shutdown() }
	t.Cleanup(stop)
	return stop
}

func TestEmbeddedDNSUpstream(t *testing.T) {
	d := newDaemon(t)
	other, _ := otherMachine(t, d)
	// The upstream answers example.test with one address, and big.test with more records than fit a
	// 512-byte UDP answer (the resolver must retry over TCP).
	stop := serveIn(t, other, "10.99.0.2:53", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch q.Name {
		case "example.test.":
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.7")})
		case "big.test.":
			n := 1
			if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
				m.Truncated = true
			} else {
				n = 40
			}
			for i := 0; i < n; i++ {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{strings.Repeat("x", 30)}})
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	}))
	mustDocker(t, d, "network", "create", "app")
	mustDocker(t, d, "run", "-d", "--name", "cl", "--network", "app", "--dns", "10.99.0.2", "busybox", "sleep", "300")
	ns := sandboxOf(t, d, "cl")
	out := mustDocker(t, d, "exec", "cl", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(out, "# ExtServers: [10.99.0.2]"))

	assert.Check(t, is.DeepEqual(answers(query(t, ns, "udp", "example.test", dns.TypeA)), []string{"192.0.2.7"}))
	assert.Check(t, is.Equal(query(t, ns, "udp", "nope.test", dns.TypeA).Rcode, dns.RcodeNameError))
	// Truncated over UDP: fetched again over TCP, relayed whole over a TCP query.
	assert.Check(t, is.Len(query(t, ns, "tcp", "big.test", dns.TypeTXT).Answer, 40))

	// A silent upstream: the external query ends in SERVFAIL, and container names are answered meanwhile.
	stop()
	silent, err := listenUDPIn(other, "10.99.0.2:53")
	assert.NilError(t, err)
	defer silent.Close()
	done := make(chan *dns.Msg, 1)
	go func() {
		c, err := dialIn(ns, "udp", "127.0.0.11:53")
		if err != nil {
			done <- nil
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeA)
		dc := &dns.Conn{Conn: c}
		_ = dc.WriteMsg(m)
		r, _ := dc.ReadMsg()
		done <- r
	}()
	assert.Check(t, is.Len(query(t, ns, "udp", "cl", dns.TypeA).Answer, 1))
	r := <-done
	assert.Assert(t, r != nil, "no answer for an external name with a silent upstream")
	assert.Check(t, is.Equal(r.Rcode, dns.RcodeServerFailure))
}

func TestEmbeddedDNSLiveRestoreAndDaemonDNS(t *testing.T) {
	d := newDaemon(t, "--live-restore", "--dns", "10.0.0.53", "--dns-search", "corp.example")
	mustDocker(t, d, "network", "create", "lr")
	mustDocker(t, d, "run", "-d", "--name", "srv", "--network", "lr", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "cli", "--network", "lr", "busybox", "sleep", "300")
	ip := ipOf(t, d, "srv", "lr")
	ns := sandboxOf(t, d, "cli")
	// The daemon's --dns and --dns-search are the containers' defaults.
	out := mustDocker(t, d, "exec", "cli", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(out, "search corp.example\n"))
	assert.Check(t, is.Contains(out, "# ExtServers: [10.0.0.53]"))
	out = mustDocker(t, d, "run", "--rm", "busybox", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(out, "nameserver 10.0.0.53\nsearch corp.example\n"))

	d.Kill(t)
	d.Start(t, "--live-restore", "--dns", "10.0.0.53")
	// The restored container's server answers again, on the same address.
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "udp", "srv", dns.TypeA)), []string{ip}))
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "tcp", "srv", dns.TypeA)), []string{ip}))
	out = mustDocker(t, d, "exec", "cli", "ping", "-c", "1", "-W", "2", "srv")
	assert.Check(t, is.Contains(out, ip))
	mustDocker(t, d, "rm", "-f", "srv", "cli")
}

func strconvQuote(s string) string { return `"` + s + `"` }
