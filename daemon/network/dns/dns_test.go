package dns

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// table is a fixed name table (pure logic: the real one is the network service's).
type table map[string][]netip.Addr

func (t table) ResolveName(key, name string, v6 bool) ([]netip.Addr, bool) {
	all, ok := t[name]
	var out []netip.Addr
	for _, a := range all {
		if a.Is6() == v6 {
			out = append(out, a)
		}
	}
	return out, ok
}

func (t table) ResolveAddr(key string, ip netip.Addr) string {
	for n, as := range t {
		for _, a := range as {
			if a == ip {
				return n + ".net"
			}
		}
	}
	return ""
}

// writer records the reply of a handler.
type writer struct {
	tcp bool
	msg *dns.Msg
}

func (w *writer) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 53}
}
func (w *writer) RemoteAddr() net.Addr        { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 999} }
func (w *writer) WriteMsg(m *dns.Msg) error   { w.msg = m; return nil }
func (w *writer) Write(b []byte) (int, error) { return len(b), nil }
func (w *writer) Close() error                { return nil }
func (w *writer) TsigStatus() error           { return nil }
func (w *writer) TsigTimersOnly(bool)         {}
func (w *writer) Hijack()                     {}
func (w *writer) Network() string             { return "udp" }

func newHandler(cfg Config) dns.Handler {
	many := make([]netip.Addr, 60)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
	}
	return New(table{"web": {netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")}, "many": many}, Options{}).Handler("c", "", cfg)
}

func ask(h dns.Handler, name string, qt uint16, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qt)
	w := &writer{tcp: tcp}
	h.ServeDNS(w, m)
	return w.msg
}

func TestHandler(t *testing.T) {
	h := newHandler(Config{})
	r := ask(h, "WEB.", dns.TypeA, false)
	assert.Assert(t, is.Len(r.Answer, 1))
	assert.Check(t, is.Equal(r.Answer[0].(*dns.A).A.String(), "10.0.0.2"))
	assert.Check(t, is.Equal(r.Answer[0].Header().Ttl, uint32(600)))
	r = ask(h, "web.", dns.TypeAAAA, false)
	assert.Check(t, is.Equal(r.Answer[0].(*dns.AAAA).AAAA.String(), "fd00::2"))
	r = ask(h, "web.", dns.TypeMX, false)
	assert.Check(t, is.Equal(r.Rcode, dns.RcodeSuccess))
	assert.Check(t, is.Len(r.Answer, 0))
	r = ask(h, "2.0.0.10.in-addr.arpa.", dns.TypePTR, false)
	assert.Check(t, is.Equal(r.Answer[0].(*dns.PTR).Ptr, "web.net."))
	rev, _ := dns.ReverseAddr("fd00::2")
	r = ask(h, rev, dns.TypePTR, false)
	assert.Check(t, is.Equal(r.Answer[0].(*dns.PTR).Ptr, "web.net."))
	// No upstream: SERVFAIL for other names.
	assert.Check(t, is.Equal(ask(h, "example.com.", dns.TypeA, false).Rcode, dns.RcodeServerFailure))
	// UDP answers are cut to 512 bytes; TCP carries them whole.
	r = ask(h, "many.", dns.TypeA, false)
	assert.Check(t, r.Len() <= 512)
	assert.Check(t, is.Len(ask(h, "many.", dns.TypeA, true).Answer, 60))
}

// With the user's ndots > 0, a dotless name not in the table is answered empty for the client to try
// its search domains; dotted names and other types still go upstream (none here: SERVFAIL). Without it,
// dotless names are forwarded too.
func TestNdots(t *testing.T) {
	h := newHandler(Config{NdotsSet: true})
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r := ask(h, "nosuch.", qt, false)
		assert.Check(t, is.Equal(r.Rcode, dns.RcodeSuccess))
		assert.Check(t, is.Len(r.Answer, 0))
	}
	assert.Check(t, is.Len(ask(h, "web.", dns.TypeA, false).Answer, 1))
	assert.Check(t, is.Equal(ask(h, "no.such.", dns.TypeA, false).Rcode, dns.RcodeServerFailure))
	assert.Check(t, is.Equal(ask(h, "nosuch.", dns.TypeTXT, false).Rcode, dns.RcodeServerFailure))
	assert.Check(t, is.Equal(ask(newHandler(Config{}), "nosuch.", dns.TypeA, false).Rcode, dns.RcodeServerFailure))
}

func TestRules(t *testing.T) {
	got := string(Rules(4000, 5000, true))
	assert.Check(t, strings.Contains(got, "-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT\n"))
	assert.Check(t, strings.Contains(got, "--dport 53 -j DNAT --to-destination 127.0.0.11:4000\n"))
	assert.Check(t, strings.Contains(got, "-p tcp -m tcp --sport 5000 -j SNAT --to-source :53\n"))
	assert.Check(t, !strings.Contains(string(Rules(4000, 5000, false)), "-A OUTPUT"))
}

// FuzzServeDNS feeds raw packets through miekg/dns's parser and the handler: no panic, and every
// parsed query gets exactly one well-formed reply with its ID.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		n  string
		qt uint16
	}{{"web.", dns.TypeA}, {"2.0.0.10.in-addr.arpa.", dns.TypePTR}, {"x.ip6.arpa.", dns.TypePTR}, {"many.", dns.TypeAAAA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.n, q.qt)
		b, _ := m.Pack()
		f.Add(b)
	}
	h := newHandler(Config{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		w := &writer{}
		h.ServeDNS(w, m)
		if m.Response {
			return
		}
		if w.msg == nil {
			t.Fatal("no reply")
		}
		if w.msg.Id != m.Id {
			t.Fatal("reply ID differs")
		}
		if _, err := w.msg.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
	})
}
