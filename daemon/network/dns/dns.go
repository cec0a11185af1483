// Package dns is the embedded DNS server containers on user-defined networks reach at 127.0.0.11
// (network-facts.md §5.2). One Resolver serves every container from goroutines of the daemon: for each
// container a UDP and a TCP socket are opened inside its network namespace on 127.0.0.11 with random
// ports, and iptables rules in that namespace redirect 127.0.0.11:53 to them (as dockerd), so a
// container's own server on port 53 never clashes with ours. Names are answered from a Table the
// network service owns; other names go to upstream servers with a bounded total time, so a dead
// upstream never stalls container names and an external query gets its answer or SERVFAIL in time.
// The container's --dns servers are asked over sockets made in its namespace, the host file's from
// the daemon's (as dockerd); with the user's ndots > 0 a dotless unknown name is answered empty, not
// forwarded.
package dns

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/containerd/log"
	"github.com/miekg/dns"
)

// Addr is where containers send their queries.
const Addr = "127.0.0.11"

// ttl is dockerd's TTL for container names.
const ttl = 600

// Table answers names for one container (the key): what it may see on its networks.
type Table interface {
	// ResolveName returns the addresses of name (no trailing dot, any case) seen from container key,
	// and whether the name is known at all (known with no address of the family: empty answer).
	ResolveName(key, name string, v6 bool) (addrs []netip.Addr, known bool)
	// ResolveAddr returns the name (without trailing dot) for ip, "" if unknown.
	ResolveAddr(key string, ip netip.Addr) string
}

// Options tune the forwarding.
type Options struct {
	// PerUpstream bounds one upstream attempt; Total bounds the whole forwarded query.
	PerUpstream, Total time.Duration
	// MaxConcurrent forwarded queries; more are REFUSED (dockerd: 1024).
	MaxConcurrent int
}

// Resolver serves all containers.
type Resolver struct {
	table Table
	opts  Options
	sem   chan struct{}

	mu        sync.Mutex
	listeners map[string]*Listener
}

// New makes a resolver over table.
func New(table Table, opts Options) *Resolver {
	if opts.PerUpstream == 0 {
		opts.PerUpstream = 2 * time.Second
	}
	if opts.Total == 0 {
		opts.Total = 4 * time.Second
	}
	if opts.MaxConcurrent == 0 {
		opts.MaxConcurrent = 1024
	}
	return &Resolver{table: table, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent), listeners: map[string]*Listener{}}
}

// Upstream is a server the resolver forwards to: "ip" or "ip:port".
type Upstream struct {
	Addr string
	// InContainer: queried from the container's network namespace, as dockerd does for --dns servers
	// (one reachable only from the container's networks works); the host file's servers are queried
	// from the daemon's namespace (a loopback resolver of the host works too).
	InContainer bool
}

// Config is what one container's server does besides answering names.
type Config struct {
	// Upstreams are tried in order; dockerd uses the first three.
	Upstreams []Upstream
	// NdotsSet: the user asked for ndots > 0, so a dotless A/AAAA name not in the table is answered
	// empty (NOERROR) for the client to retry with its search domains, never forwarded (dockerd).
	NdotsSet bool
}

// handler serves one container.
type handler struct {
	r         *Resolver
	key       string
	nsPath    string
	upstreams []Upstream
	ndotsSet  bool
}

// Handler returns the dns.Handler for container key, whose namespace is nsPath.
func (r *Resolver) Handler(key, nsPath string, cfg Config) dns.Handler {
	ups := make([]Upstream, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		if _, _, err := net.SplitHostPort(u.Addr); err != nil {
			u.Addr = net.JoinHostPort(u.Addr, "53")
		}
		ups = append(ups, u)
		if len(ups) == 3 {
			break
		}
	}
	return &handler{r: r, key: key, nsPath: nsPath, upstreams: ups, ndotsSet: cfg.NdotsSet}
}

// ServeDNS answers one query; it never panics on malformed input (miekg/dns parsed it already) and
// always writes one reply.
func (h *handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := h.answer(req, isTCP(w))
	if resp == nil {
		return
	}
	if !isTCP(w) {
		size := 512
		if o := req.IsEdns0(); o != nil && int(o.UDPSize()) > size {
			size = int(o.UDPSize())
		}
		resp.Truncate(size)
	}
	_ = w.WriteMsg(resp)
}

func isTCP(w dns.ResponseWriter) bool {
	_, ok := w.LocalAddr().(*net.TCPAddr)
	return ok
}

// answer builds the reply for req; nil when req is not worth one (a response, not a query).
func (h *handler) answer(req *dns.Msg, tcp bool) *dns.Msg {
	if req.Response {
		return nil
	}
	resp := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeNotImplemented)
		return resp
	}
	q := req.Question[0]
	name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeMX:
		addrs, known := h.r.table.ResolveName(h.key, name, q.Qtype == dns.TypeAAAA)
		if known {
			resp.SetReply(req)
			resp.Authoritative = true
			if q.Qtype == dns.TypeMX {
				return resp
			}
			for _, a := range addrs {
				hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: ttl}
				if a.Is4() {
					resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
				} else {
					resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
				}
			}
			return resp
		}
	case dns.TypePTR:
		if ip, ok := ptrAddr(name); ok {
			if n := h.r.table.ResolveAddr(h.key, ip); n != "" {
				resp.SetReply(req)
				resp.Authoritative = true
				resp.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: dns.Fqdn(n)}}
				return resp
			}
		}
	}
	if h.ndotsSet && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) && !strings.Contains(name, ".") {
		resp.SetReply(req)
		resp.RecursionAvailable = true
		return resp
	}
	return h.forward(req, tcp)
}

// ptrAddr parses an in-addr.arpa / ip6.arpa name.
func ptrAddr(name string) (netip.Addr, bool) {
	if s, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		p := strings.Split(s, ".")
		if len(p) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
		return a, err == nil
	}
	if s, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		p := strings.Split(s, ".")
		if len(p) != 32 {
			return netip.Addr{}, false
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			if len(p[i]) != 1 {
				return netip.Addr{}, false
			}
			b.WriteString(p[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(b.String())
		return a, err == nil
	}
	return netip.Addr{}, false
}

// forward relays req to the upstreams in turn within opts.Total: UDP first, TCP when the UDP answer
// is truncated (or the client came over TCP). SERVFAIL/REFUSED from one upstream moves to the next;
// nothing usable gives SERVFAIL.
func (h *handler) forward(req *dns.Msg, tcp bool) *dns.Msg {
	fail := func(code int) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(req, code)
		m.RecursionAvailable = true
		return m
	}
	if len(h.upstreams) == 0 {
		return fail(dns.RcodeServerFailure)
	}
	select {
	case h.r.sem <- struct{}{}:
		defer func() { <-h.r.sem }()
	default:
		return fail(dns.RcodeRefused)
	}
	deadline := time.Now().Add(h.r.opts.Total)
	for _, up := range h.upstreams {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		per := min(h.r.opts.PerUpstream, left)
		resp, err := h.exchange(req, up, tcp, per)
		if err == nil && resp.Truncated && !tcp {
			if left = time.Until(deadline); left > 0 {
				if r2, err2 := h.exchange(req, up, true, min(h.r.opts.PerUpstream, left)); err2 == nil {
					resp = r2
				}
			}
		}
		if err != nil {
			log.L.WithError(err).WithField("upstream", up.Addr).Debug("dns: upstream failed")
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			continue
		}
		resp.Id = req.Id
		return resp
	}
	return fail(dns.RcodeServerFailure)
}

// exchange asks one upstream, over a socket made in the container's namespace when the upstream
// is one of its --dns servers.
func (h *handler) exchange(req *dns.Msg, up Upstream, tcp bool, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: 4096}
	if tcp {
		c.Net = "tcp"
	}
	if !up.InContainer || h.nsPath == "" {
		resp, _, err := c.Exchange(req.Copy(), up.Addr)
		return resp, err
	}
	conn, err := dialIn(h.nsPath, c.Net, up.Addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	co := &dns.Conn{Conn: conn, UDPSize: c.UDPSize}
	resp, _, err := c.ExchangeWithConn(req.Copy(), co)
	return resp, err
}
