package network

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A running container's /etc/hosts gains its address on a network it connects to and loses it on
// disconnect; the rest of the file (a user's line too) stays.
func TestHostsFollowConnectDisconnect(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "network", "create", "one")
	mustDocker(t, d, "network", "create", "two")
	mustDocker(t, d, "run", "-d", "--name", "hc", "--network", "one", "--hostname", "h", "busybox", "sleep", "300")
	ip1 := ipOf(t, d, "hc", "one")
	mustDocker(t, d, "exec", "hc", "sh", "-c", "echo '10.9.9.9 mine' >> /etc/hosts")
	mustDocker(t, d, "network", "connect", "two", "hc")
	ip2 := ipOf(t, d, "hc", "two")
	hosts := mustDocker(t, d, "exec", "hc", "cat", "/etc/hosts") + "\n"
	assert.Check(t, is.Contains(hosts, ip1+"\th\n"))
	assert.Check(t, is.Contains(hosts, ip2+"\th\n"))
	assert.Check(t, is.Contains(hosts, "10.9.9.9 mine\n"))
	mustDocker(t, d, "network", "disconnect", "one", "hc")
	hosts = mustDocker(t, d, "exec", "hc", "cat", "/etc/hosts") + "\n"
	assert.Check(t, !strings.Contains(hosts, ip1+"\t"), hosts)
	assert.Check(t, is.Contains(hosts, ip2+"\th\n"))
	assert.Check(t, is.Contains(hosts, "10.9.9.9 mine\n"))
}

// A started container's resolv.conf follows the daemon's --dns of now, unless the user edited it.
func TestResolvConfRegeneratedUnlessEdited(t *testing.T) {
	d := newDaemon(t, "--dns", "10.0.0.53")
	mustDocker(t, d, "run", "-d", "--name", "keep", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "edit", "busybox", "sleep", "300")
	mustDocker(t, d, "exec", "edit", "sh", "-c", "echo 'nameserver 10.7.7.7' > /etc/resolv.conf")
	mustDocker(t, d, "stop", "-t", "0", "keep", "edit")
	d.Restart(t, "--dns", "10.0.0.54")
	mustDocker(t, d, "start", "keep", "edit")
	out := mustDocker(t, d, "exec", "keep", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(out, "nameserver 10.0.0.54\n"))
	assert.Check(t, !strings.Contains(out, "10.0.0.53"), out)
	assert.Check(t, is.Equal(mustDocker(t, d, "exec", "edit", "cat", "/etc/resolv.conf"), "nameserver 10.7.7.7"))
}

// recorder is an upstream answering every A query with 192.0.2.9 and noting the names asked.
type recorder struct {
	mu    sync.Mutex
	names []string
}

func (r *recorder) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	r.mu.Lock()
	r.names = append(r.names, q.Question[0].Name)
	r.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	if q.Question[0].Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.9")})
	}
	_ = w.WriteMsg(m)
}

func (r *recorder) asked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

// --dns servers are queried from the container's namespace: one on the container's own loopback works.
// With the user's ndots > 0, a dotless unknown name is answered empty (NOERROR) and never forwarded;
// without it, it is forwarded.
func TestUpstreamFromContainerNetnsAndNdots(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "network", "create", "app")
	mustDocker(t, d, "run", "-d", "--name", "nd", "--network", "app", "--dns", "127.0.0.1", "--dns-option", "ndots:1", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "plain", "--network", "app", "--dns", "127.0.0.1", "busybox", "sleep", "300")
	nsND, nsPlain := sandboxOf(t, d, "nd"), sandboxOf(t, d, "plain")
	upND, upPlain := &recorder{}, &recorder{}
	serveIn(t, nsND, "127.0.0.1:53", upND)
	serveIn(t, nsPlain, "127.0.0.1:53", upPlain)

	for _, proto := range []string{"udp", "tcp"} {
		r := query(t, nsND, proto, "example.test", dns.TypeA)
		assert.Check(t, is.DeepEqual(answers(r), []string{"192.0.2.9"}), proto)
	}
	r := query(t, nsND, "udp", "dotless", dns.TypeA)
	assert.Check(t, is.Equal(r.Rcode, dns.RcodeSuccess))
	assert.Check(t, is.Len(r.Answer, 0))
	r = query(t, nsND, "udp", "dotless", dns.TypeAAAA)
	assert.Check(t, is.Equal(r.Rcode, dns.RcodeSuccess))
	assert.Check(t, is.Len(r.Answer, 0))
	// Container names still answer.
	assert.Check(t, is.Len(query(t, nsND, "udp", "plain", dns.TypeA).Answer, 1))
	assert.Check(t, is.DeepEqual(upND.asked(), []string{"example.test.", "example.test."}))

	assert.Check(t, is.DeepEqual(answers(query(t, nsPlain, "udp", "dotless", dns.TypeA)), []string{"192.0.2.9"}))
	assert.Check(t, is.DeepEqual(upPlain.asked(), []string{"dotless."}))
}

// --link on a user-defined network is an alias only the linking container resolves: no hosts line,
// no environment.
func TestLinkOnUserNetworkIsPrivateAlias(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "network", "create", "app")
	mustDocker(t, d, "run", "-d", "--name", "srv", "--network", "app", "--expose", "80", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "cli", "--network", "app", "--link", "srv:db", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "other", "--network", "app", "busybox", "sleep", "300")
	ip := ipOf(t, d, "srv", "app")
	assert.Check(t, is.DeepEqual(answers(query(t, sandboxOf(t, d, "cli"), "udp", "db", dns.TypeA)), []string{ip}))
	assert.Check(t, is.DeepEqual(answers(query(t, sandboxOf(t, d, "cli"), "udp", "DB", dns.TypeA)), []string{ip}))
	assert.Check(t, is.Len(query(t, sandboxOf(t, d, "other"), "udp", "db", dns.TypeA).Answer, 0))
	out := mustDocker(t, d, "exec", "cli", "ping", "-c", "1", "-W", "2", "db")
	assert.Check(t, is.Contains(out, ip))
	env := mustDocker(t, d, "exec", "cli", "env")
	assert.Check(t, !strings.Contains(env, "DB_"), env)
	// A legacy link needs a running container (dockerd's words).
	mustDocker(t, d, "create", "--name", "stopped", "busybox", "true")
	res := d.Docker(t, "run", "--name", "linker", "--link", "stopped:x", "busybox", "true")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "Cannot link to a non running container: /stopped AS /linker/x"))
	// network connect --link: an alias for the connecting container only.
	mustDocker(t, d, "network", "create", "more")
	mustDocker(t, d, "network", "connect", "more", "srv")
	mustDocker(t, d, "network", "connect", "--link", "srv:db2", "more", "other")
	assert.Check(t, is.DeepEqual(answers(query(t, sandboxOf(t, d, "other"), "udp", "db2", dns.TypeA)), []string{ipOf(t, d, "srv", "more")}))
	assert.Check(t, is.Len(query(t, sandboxOf(t, d, "cli"), "udp", "db2", dns.TypeA).Answer, 0))
	hosts := mustDocker(t, d, "exec", "cli", "cat", "/etc/hosts")
	for _, f := range strings.Fields(hosts) {
		assert.Check(t, f != "db", hosts)
	}
}

// A default-bridge container connected to a user-defined network resolves through the embedded server
// from then on (its resolv.conf is rewritten, unless edited), across a restart too.
func TestBridgeContainerConnectedGetsEmbeddedResolver(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "network", "create", "app")
	mustDocker(t, d, "run", "-d", "--name", "srv", "--network", "app", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "br", "busybox", "sleep", "300")
	assert.Check(t, is.Contains(mustDocker(t, d, "exec", "br", "cat", "/etc/resolv.conf"), "(legacy)"))
	mustDocker(t, d, "network", "connect", "app", "br")
	assert.Check(t, is.Contains(mustDocker(t, d, "exec", "br", "cat", "/etc/resolv.conf"), "nameserver 127.0.0.11\n"))
	assert.Check(t, is.Contains(mustDocker(t, d, "exec", "br", "ping", "-c", "1", "-W", "2", "srv"), ipOf(t, d, "srv", "app")))
	mustDocker(t, d, "restart", "-t", "0", "br")
	assert.Check(t, is.Contains(mustDocker(t, d, "exec", "br", "cat", "/etc/resolv.conf"), "nameserver 127.0.0.11\n"))
}
