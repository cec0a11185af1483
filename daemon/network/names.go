// Names (this file): the name table of the embedded DNS server (package dns), read from the endpoints
// the service owns, so it follows connect, disconnect, start, stop, rename and restore by construction.

package network

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/berthd/berthd/daemon/network/dns"
	"github.com/containerd/log"
)

// DNSNames are the names an endpoint answers to, as dockerd's DNSNames in inspect: container name,
// aliases, short ID, hostname, without duplicates.
func (e *epRecord) DNSNames() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimPrefix(s, "/")
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(e.ContainerName)
	for _, a := range e.Aliases {
		add(a)
	}
	if len(e.ContainerID) >= 12 {
		add(e.ContainerID[:12])
	}
	add(e.Hostname)
	return out
}

// dnsNames are DNSNames as looked up (case-insensitive).
func (e *epRecord) dnsNames() []string {
	names := e.DNSNames()
	for i, n := range names {
		names[i] = strings.ToLower(n)
	}
	return names
}

// resolvable reports whether endpoints on n take part in name resolution (not the default bridge).
func resolvable(n *netRecord) bool { return n != nil && n.Name != "bridge" && n.Driver == "bridge" }

// nameTable is the service seen as the embedded DNS's table (a type of its own keeps Service's
// method set small).
type nameTable struct{ s *Service }

// ResolveName implements dns.Table: name as seen by container key on the user-defined networks it is
// attached to, also as <name>.<network>. Several endpoints behind one name give all their addresses
// in a rotated order.
func (t nameTable) ResolveName(key, name string, v6 bool) ([]netip.Addr, bool) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	// The name looked for on each of the container's networks: a --link alias of its endpoint there
	// stands for the linked container's name on that network only, and only this container sees it.
	mine := map[string]string{}
	for _, e := range s.eps {
		if e.ContainerID == key && resolvable(s.nets[e.NetworkID]) {
			mine[e.NetworkID] = name
			if target, ok := e.Links[name]; ok {
				mine[e.NetworkID] = target
			}
		}
	}
	var addrs []netip.Addr
	known := false
	for _, e := range s.eps {
		n := s.nets[e.NetworkID]
		want, ok := mine[e.NetworkID]
		if !ok || n == nil {
			continue
		}
		suffix := "." + strings.ToLower(n.Name)
		for _, dn := range e.dnsNames() {
			if want == dn || want == dn+suffix {
				known = true
				if a := e.Addr.Addr(); a.Is6() == v6 {
					addrs = append(addrs, a)
				}
				break
			}
		}
	}
	if len(addrs) > 1 {
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	}
	return addrs, known
}

// ResolveAddr implements dns.Table: the first DNS name of the endpoint holding ip, with its network.
func (t nameTable) ResolveAddr(key string, ip netip.Addr) string {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := map[string]bool{}
	for _, e := range s.eps {
		if e.ContainerID == key && resolvable(s.nets[e.NetworkID]) {
			mine[e.NetworkID] = true
		}
	}
	for _, e := range s.eps {
		if mine[e.NetworkID] && e.Addr.Addr() == ip {
			if names := e.dnsNames(); len(names) > 0 {
				return names[0] + "." + s.nets[e.NetworkID].Name
			}
		}
	}
	return ""
}

// startDNS gives the container's namespace the embedded server when it joins its first user-defined
// network. s.mu held.
func startDNS(ctx context.Context, s *Service, e *epRecord, fresh bool) {
	if s.dns == nil || !resolvable(s.nets[e.NetworkID]) || s.dns.Serving(e.ContainerID) {
		return
	}
	if err := s.dns.Start(ctx, e.ContainerID, e.NetNS, dnsConfig(s.cfg, e.DNS, e.DNSOptions), fresh); err != nil {
		log.G(ctx).WithError(err).WithField("container", e.ContainerID).Warn("embedded DNS not started")
	}
}

// dnsConfig is a container's server configuration. --dns servers (the container's, else the daemon's)
// are queried from the container's namespace; without them the host file's servers are, from the
// daemon's namespace (dockerd). The ndots rule follows the user's --dns-option (container's, else
// daemon's).
func dnsConfig(cfg Config, servers, options []string) dns.Config {
	var out dns.Config
	if len(servers) == 0 {
		servers = cfg.DNS
	}
	if len(options) == 0 {
		options = cfg.DNSOptions
	}
	inContainer := len(servers) > 0
	if !inContainer {
		if b, err := os.ReadFile(HostResolvConfPath()); err == nil {
			servers = Nameservers(b)
		}
	}
	for _, a := range servers {
		out.Upstreams = append(out.Upstreams, dns.Upstream{Addr: a, InContainer: inContainer})
	}
	out.NdotsSet = ndotsSet(options)
	return out
}

// ndotsSet reports whether options hold ndots:N with N > 0.
func ndotsSet(options []string) bool {
	set := false
	for _, o := range options {
		if v, ok := strings.CutPrefix(o, "ndots:"); ok {
			n, err := strconv.Atoi(v)
			set = err == nil && n > 0
		}
	}
	return set
}

// linkAliases maps the aliases of --link entries ("name[:alias]") to the linked container's name.
func linkAliases(links []string) map[string]string {
	if len(links) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, l := range links {
		name, alias, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		if alias == "" {
			alias = name
		}
		alias = alias[strings.LastIndex(alias, "/")+1:]
		out[strings.ToLower(alias)] = strings.ToLower(name)
	}
	return out
}

// newResolver is the daemon's one embedded DNS server over the service's table.
func newResolver(s *Service) *dns.Resolver { return dns.New(nameTable{s}, dns.Options{}) }

// Rename stores the container's new name on its endpoints, so the embedded DNS answers to it (and no
// longer to the old one).
func (s *Service) Rename(ctx context.Context, containerID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.eps {
		if e.ContainerID != containerID {
			continue
		}
		old := e.ContainerName
		e.ContainerName = name
		if err := s.store.putEndpoint(e); err != nil {
			e.ContainerName = old
			return err
		}
	}
	return nil
}

// HostGatewayIPs are the daemon's host-gateway-ip, else the default bridge's gateway (as dockerd).
func (s *Service) HostGatewayIPs() []netip.Addr {
	if len(s.cfg.HostGatewayIPs) > 0 {
		return s.cfg.HostGatewayIPs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nets {
		if n.Name == "bridge" && n.Gateway.IsValid() {
			return []netip.Addr{n.Gateway}
		}
	}
	return nil
}

// ResolvDefaults are the daemon's --dns, --dns-search and --dns-opt.
func (s *Service) ResolvDefaults() (dns, search, options []string) {
	return s.cfg.DNS, s.cfg.DNSSearch, s.cfg.DNSOptions
}
