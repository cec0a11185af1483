package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	ntypes "github.com/berthd/berthd/api/types/network"
	"github.com/berthd/berthd/daemon/network/bridge"
	"github.com/berthd/berthd/daemon/network/firewall"
	"github.com/berthd/berthd/daemon/network/ipam"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

// Bridge option keys.
const (
	optBridgeName = "com.docker.network.bridge.name"
	optMasq       = "com.docker.network.bridge.enable_ip_masquerade"
	optICC        = "com.docker.network.bridge.enable_icc"
	optHostIP     = "com.docker.network.bridge.host_binding_ipv4"
	optDefault    = "com.docker.network.bridge.default_bridge"
	optMTU        = "com.docker.network.driver.mtu"
	optIPv4       = "com.docker.network.enable_ipv4"
	optIPv6       = "com.docker.network.enable_ipv6"
)

var knownBridgeOpts = map[string]bool{optBridgeName: true, optMasq: true, optICC: true, optHostIP: true,
	optDefault: true, optMTU: true, optIPv4: true, optIPv6: true}

func isPredefined(name string) bool {
	switch name {
	case "bridge", "host", "none", "default":
		return true
	}
	return false
}

// setupPredefined keeps host and none (stable IDs) and re-creates the default bridge with the current
// flags and a new ID, as dockerd, unless live-restore kept endpoints on it.
func (s *Service) setupPredefined(ctx context.Context) error {
	var old *netRecord
	for _, n := range s.nets {
		if n.Name == "bridge" {
			old = n
		}
	}
	for _, p := range []struct{ name, driver string }{{"host", "host"}, {"none", "null"}} {
		if s.byName(p.name) != nil {
			continue
		}
		n := &netRecord{ID: newID(), Name: p.name, Driver: p.driver, Created: time.Now(), Options: map[string]string{},
			Labels: map[string]string{}, IPAMDriver: "default"}
		if err := s.store.putNetwork(n); err != nil {
			return err
		}
		s.nets[n.ID] = n
	}
	keep := false
	if old != nil && s.cfg.LiveRestore {
		for _, e := range s.eps {
			if e.NetworkID == old.ID && fileExists(e.NetNS) {
				keep = true
			}
		}
	}
	if keep {
		log.G(ctx).Info("there are running containers, updated network configuration will not take affect")
		return nil
	}
	if old != nil {
		if err := s.store.deleteNetworkRecord(old.ID); err != nil {
			return err
		}
		delete(s.nets, old.ID)
		if s.fw != nil {
			_ = s.fw.RemoveNetwork(old.fwNetwork())
		}
	}
	if s.cfg.Bridge == "none" {
		if old != nil && !old.External {
			_ = bridge.Delete(old.Bridge)
		}
		return nil
	}
	n, err := s.defaultBridge()
	if err != nil {
		return err
	}
	if old != nil && !old.External && old.Bridge == n.Bridge && old.Subnet != n.Subnet {
		// Flags changed the address: start from a clean device.
		_ = bridge.Delete(old.Bridge)
	}
	if err := s.store.putNetwork(n); err != nil {
		return err
	}
	s.nets[n.ID] = n
	return nil
}

// defaultBridge builds the record of the `bridge` network from the daemon flags.
func (s *Service) defaultBridge() (*netRecord, error) {
	name := "docker0"
	external := false
	if s.cfg.Bridge != "" {
		name, external = s.cfg.Bridge, true
	}
	n := &netRecord{ID: newID(), Name: "bridge", Driver: "bridge", Created: time.Now(), Bridge: name,
		External: external, MTU: s.cfg.MTU, Masq: s.cfg.IPMasq, ICC: s.cfg.ICC, HostIP: s.cfg.DefaultIP,
		Labels: map[string]string{}, IPAMDriver: "default"}
	if n.MTU == 0 {
		n.MTU = 1500
	}
	if !n.HostIP.IsValid() {
		n.HostIP = netip.IPv4Unspecified()
	}
	switch {
	case s.cfg.BIP != "":
		p, err := netip.ParsePrefix(s.cfg.BIP)
		if err != nil || !p.Addr().Is4() {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid bip: " + s.cfg.BIP)
		}
		n.Subnet, n.Gateway = p.Masked(), p.Addr()
	case external:
		p, err := bridgeAddr(name)
		if err != nil {
			return nil, err
		}
		n.Subnet, n.Gateway = p.Masked(), p.Addr()
	case s.cfg.FixedCIDR != "":
		p, err := netip.ParsePrefix(s.cfg.FixedCIDR)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid fixed-cidr: " + s.cfg.FixedCIDR)
		}
		n.Subnet = p.Masked()
		n.Gateway = ipam.FirstHost(n.Subnet)
	default:
		p, err := ipam.NextSubnet(s.pools(), s.usedSubnets())
		if err != nil {
			return nil, err
		}
		n.Subnet, n.Gateway = p, ipam.FirstHost(p)
	}
	if s.cfg.FixedCIDR != "" {
		r, err := netip.ParsePrefix(s.cfg.FixedCIDR)
		if err != nil || !n.Subnet.Contains(r.Addr()) || r.Bits() < n.Subnet.Bits() {
			return nil, errdefs.ErrInvalidArgument.WithMessage("fixed-cidr " + s.cfg.FixedCIDR + " is not inside the bridge subnet " + n.Subnet.String())
		}
		n.Range = r.Masked()
	}
	n.Options = map[string]string{
		optDefault: "true", optICC: strconv.FormatBool(n.ICC), optMasq: strconv.FormatBool(n.Masq),
		optHostIP: n.HostIP.String(), optBridgeName: name, optMTU: strconv.Itoa(n.MTU),
	}
	return n, nil
}

// usedSubnets are the blocks a new network must not overlap: other networks' and the host's on-link
// routes (not through our own bridges).
func (s *Service) usedSubnets() []netip.Prefix {
	var used []netip.Prefix
	own := map[string]bool{}
	for _, o := range s.nets {
		if o.Subnet.IsValid() {
			used = append(used, o.Subnet)
		}
		if o.Bridge != "" {
			own[o.Bridge] = true
		}
	}
	if s.cfg.Bridge == "" {
		own["docker0"] = true
	}
	return append(used, bridge.HostRoutes(own)...)
}

func bridgeAddr(name string) (netip.Prefix, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Prefix{}, errdefs.ErrInvalidArgument.WithMessage("bridge device with non default name " + name + " must be created manually")
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			ones, _ := ipn.Mask.Size()
			ip, _ := netip.AddrFromSlice(ipn.IP.To4())
			return netip.PrefixFrom(ip, ones), nil
		}
	}
	return netip.Prefix{}, errdefs.ErrInvalidArgument.WithMessage("bridge " + name + " has no IPv4 address")
}

func (s *Service) pools() []ipam.Pool {
	if len(s.cfg.Pools) > 0 {
		return s.cfg.Pools
	}
	return ipam.DefaultPools()
}

func (n *netRecord) fwNetwork() firewall.Network {
	return firewall.Network{Bridge: n.Bridge, Subnet: n.Subnet, Masq: n.Masq, ICC: n.ICC, Internal: n.Internal}
}

// programNetwork creates the bridge device and its rules (idempotent).
func (s *Service) programNetwork(n *netRecord) error {
	if !n.External {
		if err := bridge.Ensure(bridge.Bridge{Name: n.Bridge, Gateway: netip.PrefixFrom(n.Gateway, n.Subnet.Bits()),
			MTU: n.MTU, RouteLocalnet: true}); err != nil {
			return err
		}
	} else if err := bridge.Ensure(bridge.Bridge{Name: n.Bridge, RouteLocalnet: true}); err != nil {
		return err
	}
	if s.fw != nil {
		return s.fw.AddNetwork(n.fwNetwork())
	}
	return nil
}

func (s *Service) byName(name string) *netRecord {
	for _, n := range s.nets {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// lookupKind selects dockerd's wording of an ambiguous or missing network.
type lookupKind int

const (
	lookupInspect lookupKind = iota
	lookupDelete
	lookupAttach
)

// find resolves a term: full ID, exact name, then ID prefix. s.mu held.
func (s *Service) find(term string, kind lookupKind) (*netRecord, error) {
	if n, ok := s.nets[term]; ok {
		return n, nil
	}
	var byName, byPrefix []*netRecord
	for _, n := range s.nets {
		if n.Name == term {
			byName = append(byName, n)
		}
		if term != "" && strings.HasPrefix(n.ID, term) {
			byPrefix = append(byPrefix, n)
		}
	}
	amb := func(count int, how string) error {
		switch kind {
		case lookupInspect:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%d matches found based on %s: network %s is ambiguous", count, how, term))
		case lookupDelete:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous (%d matches found based on %s)", term, count, how))
		}
		if how == "name" {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous (%d matches found on name)", term, count))
		}
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous (%d matches found based on %s)", term, count, how))
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return nil, amb(len(byName), "name")
	case len(byPrefix) == 1:
		return byPrefix[0], nil
	case len(byPrefix) > 1:
		return nil, amb(len(byPrefix), "ID prefix")
	}
	return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", term))
}

// MaxNameLength bounds network names as container and volume names are bounded: a name ends up in
// /etc/hosts lines, DNS answers and events, where an unbounded one only fails later and less clearly.
const MaxNameLength = 255

// Create creates a network (POST /networks/create).
func (s *Service) Create(ctx context.Context, req ntypes.CreateRequest) (ntypes.CreateResponse, error) {
	if isPredefined(req.Name) {
		return ntypes.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("operation is not permitted on predefined %s network ", req.Name))
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return ntypes.CreateResponse{}, errdefs.ErrNotImplemented.WithMessage("IPv6 networks (EnableIPv6) are not supported by berthd")
	}
	if v, ok := req.Options[optIPv6]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return ntypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("driver-opt %q is not a valid bool", optIPv6))
		}
		if b {
			return ntypes.CreateResponse{}, errdefs.ErrNotImplemented.WithMessage("IPv6 networks (" + optIPv6 + ") are not supported by berthd")
		}
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return ntypes.CreateResponse{}, errdefs.ErrNotImplemented.WithMessage("IPv6-only networks (EnableIPv4=false) are not supported by berthd")
	}
	var cfgs []ipam.Config
	ipamDriver := "default"
	var ipamOpts map[string]string
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return ntypes.CreateResponse{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("could not find plugin %s in v1 plugin registry: plugin not found", req.IPAM.Driver))
		}
		ipamOpts = req.IPAM.Options
		for _, c := range req.IPAM.Config {
			cfgs = append(cfgs, ipam.Config{Subnet: c.Subnet, IPRange: c.IPRange, Gateway: c.Gateway, Aux: c.AuxAddress})
		}
	}
	subnets, err := ipam.Validate(cfgs)
	if err != nil {
		return ntypes.CreateResponse{}, err
	}
	if req.Name == "" {
		return ntypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage("invalid name: name is empty")
	}
	if len(req.Name) > MaxNameLength {
		return ntypes.CreateResponse{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid name: name is %d characters long, the limit is %d characters", len(req.Name), MaxNameLength))
	}
	driver := req.Driver
	if driver == "" {
		driver = "bridge"
	}
	switch driver {
	case "bridge":
	case "host", "null":
		return ntypes.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("only one instance of \"%s\" network is allowed", driver))
	default:
		return ntypes.CreateResponse{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("could not find plugin %s in v1 plugin registry: plugin not found", driver))
	}
	if req.Scope == "swarm" || req.Scope == "global" {
		return ntypes.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage("cannot create a swarm scoped network when swarm is not active")
	}
	if req.Ingress {
		return ntypes.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.")
	}
	if req.ConfigOnly || (req.ConfigFrom != nil && req.ConfigFrom.Network != "") {
		return ntypes.CreateResponse{}, errdefs.ErrNotImplemented.WithMessage("config-only networks (--config-only, --config-from) are not supported by berthd")
	}
	if len(subnets) > 1 {
		return ntypes.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage("bridge driver doesn't support multiple subnets")
	}
	n := &netRecord{ID: newID(), Name: req.Name, Driver: driver, Created: time.Now(), Internal: req.Internal,
		Attachable: req.Attachable, Options: map[string]string{}, Labels: map[string]string{}, IPAMDriver: ipamDriver,
		IPAMOpts: ipamOpts, UserIPAM: cfgs, Masq: true, ICC: true, MTU: 0, HostIP: s.cfg.DefaultIP}
	for k, v := range req.Options {
		n.Options[k] = v
	}
	for k, v := range req.Labels {
		n.Labels[k] = v
	}
	if err := n.applyOptions(); err != nil {
		return ntypes.CreateResponse{}, err
	}
	if n.Bridge == "" {
		n.Bridge = "br-" + n.ID[:12]
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName(req.Name) != nil {
		return ntypes.CreateResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", req.Name))
	}
	var used []netip.Prefix
	for _, o := range s.nets {
		if o.Subnet.IsValid() {
			used = append(used, o.Subnet)
		}
		if o.Bridge == n.Bridge && o.Driver == "bridge" {
			return ntypes.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("cannot create network %s (%s): conflicts with network %s (%s): networks have same bridge name", n.ID, n.Bridge, o.ID, o.Bridge))
		}
	}
	if len(subnets) == 1 {
		sub := subnets[0]
		for _, u := range used {
			if u.Overlaps(sub.Prefix) {
				return ntypes.CreateResponse{}, errdefs.ErrPermissionDenied.WithMessage("invalid pool request: Pool overlaps with other one on this address space")
			}
		}
		n.Subnet, n.Range, n.Aux = sub.Prefix, sub.Range, sub.Aux
		n.Gateway = sub.Gateway
		if !n.Gateway.IsValid() {
			n.Gateway = ipam.FirstHost(n.Subnet)
		}
	} else {
		p, err := ipam.NextSubnet(s.pools(), s.usedSubnets())
		if err != nil {
			return ntypes.CreateResponse{}, err
		}
		n.Subnet, n.Gateway = p, ipam.FirstHost(p)
	}
	if err := s.programNetwork(n); err != nil {
		s.unprogramNetwork(ctx, n)
		return ntypes.CreateResponse{}, err
	}
	if err := s.store.putNetwork(n); err != nil {
		s.unprogramNetwork(ctx, n)
		return ntypes.CreateResponse{}, err
	}
	s.nets[n.ID] = n
	s.logEvent("create", n, nil)
	return ntypes.CreateResponse{ID: n.ID}, nil
}

// applyOptions reads the bridge driver options into the record.
func (n *netRecord) applyOptions() error {
	for k, v := range n.Options {
		var err error
		switch k {
		case optBridgeName:
			if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ \t") {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse %s value: %s (invalid interface name)", k, v))
			}
			n.Bridge = v
		case optMasq:
			n.Masq, err = strconv.ParseBool(v)
		case optICC:
			n.ICC, err = strconv.ParseBool(v)
		case optHostIP:
			n.HostIP, err = netip.ParseAddr(v)
		case optMTU:
			n.MTU, err = bridge.ValidMTU(v)
			if err != nil {
				return err
			}
		case optIPv4, optIPv6:
		case optDefault:
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("option %s is reserved for the default bridge", k))
		default:
			if strings.HasPrefix(k, "com.docker.network.") {
				return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("bridge option %s is not supported by berthd", k))
			}
		}
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse %s value: %s (%v)", k, v, err))
		}
	}
	return nil
}

func (s *Service) unprogramNetwork(ctx context.Context, n *netRecord) {
	if s.fw != nil {
		if err := s.fw.RemoveNetwork(n.fwNetwork()); err != nil {
			log.G(ctx).WithError(err).WithField("network", n.Name).Warn("remove network rules")
		}
	}
	if !n.External {
		_ = bridge.Delete(n.Bridge)
	}
}

// Remove deletes a network without endpoints (DELETE /networks/{id}).
func (s *Service) Remove(ctx context.Context, term string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.find(term, lookupDelete)
	if err != nil {
		return err
	}
	return s.removeLocked(ctx, n)
}

func (s *Service) removeLocked(ctx context.Context, n *netRecord) error {
	if isPredefined(n.Name) {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	var active []string
	for _, e := range s.sortedEndpoints(n.ID) {
		active = append(active, fmt.Sprintf("name:%q id:%q", strings.TrimPrefix(e.ContainerName, "/"), e.ID[:12]))
	}
	if len(active) > 0 {
		return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("error while removing network: network %s has active endpoints (%s)", n.Name, strings.Join(active, ", ")))
	}
	if err := s.store.deleteNetworkRecord(n.ID); err != nil {
		return err
	}
	delete(s.nets, n.ID)
	delete(s.lastIP, n.ID)
	s.unprogramNetwork(ctx, n)
	s.logEvent("destroy", n, nil)
	return nil
}

func (s *Service) sortedEndpoints(netID string) []*epRecord {
	var out []*epRecord
	for _, e := range s.eps {
		if e.NetworkID == netID {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerName < out[j].ContainerName })
	return out
}

var listFilters = map[string]bool{"dangling": true, "driver": true, "id": true, "label": true, "name": true, "scope": true, "type": true}

// List answers GET /networks.
func (s *Service) List(ctx context.Context, f filters.Args) ([]ntypes.Inspect, error) {
	if err := f.Validate(listFilters); err != nil {
		return nil, err
	}
	for _, t := range f.Get("type") {
		if t != "builtin" && t != "custom" {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter: 'type'='%s'", t))
		}
	}
	danglingSet := f.Contains("dangling")
	var dangling bool
	if danglingSet {
		vals := f.Get("dangling")
		if len(vals) > 1 {
			return nil, errdefs.ErrInvalidArgument.WithMessage(`got more than one value for filter key "dangling"`)
		}
		switch vals[0] {
		case "true", "1":
			dangling = true
		case "false", "0":
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ntypes.Inspect{}
	for _, n := range s.nets {
		if f.Contains("driver") && !f.ExactMatch("driver", n.Driver) {
			continue
		}
		if f.Contains("scope") && !f.ExactMatch("scope", "local") {
			continue
		}
		if f.Contains("name") && !matchRegexp(f.Get("name"), n.Name) {
			continue
		}
		if f.Contains("id") && !matchRegexp(f.Get("id"), n.ID) {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", n.Labels) {
			continue
		}
		if f.Contains("type") {
			typ := "custom"
			if isPredefined(n.Name) {
				typ = "builtin"
			}
			if !f.ExactMatch("type", typ) {
				continue
			}
		}
		if danglingSet {
			d := !isPredefined(n.Name) && len(s.sortedEndpoints(n.ID)) == 0
			if d != dangling {
				continue
			}
		}
		out = append(out, s.render(n, false))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func matchRegexp(pats []string, v string) bool {
	for _, p := range pats {
		if p == v {
			return true
		}
		if re, err := regexp.Compile(p); err == nil && re.MatchString(v) {
			return true
		}
	}
	return false
}

// Inspect answers GET /networks/{id}.
func (s *Service) Inspect(ctx context.Context, term string) (ntypes.Inspect, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.find(term, lookupInspect)
	if err != nil {
		return ntypes.Inspect{}, err
	}
	return s.render(n, true), nil
}

func (s *Service) render(n *netRecord, withContainers bool) ntypes.Inspect {
	out := ntypes.Inspect{Name: n.Name, ID: n.ID, Created: n.Created.Local().Format(time.RFC3339Nano), Scope: "local",
		Driver: n.Driver, EnableIPv4: true, Internal: n.Internal, Attachable: n.Attachable, Ingress: n.Ingress,
		Containers: map[string]ntypes.EndpointResource{}, Options: copyMap(n.Options), Labels: copyMap(n.Labels),
		IPAM: ntypes.IPAM{Driver: "default", Options: n.IPAMOpts}}
	if n.Driver == "bridge" {
		if len(n.UserIPAM) > 0 {
			for _, c := range n.UserIPAM {
				out.IPAM.Config = append(out.IPAM.Config, ntypes.IPAMConfig{Subnet: c.Subnet, IPRange: c.IPRange, Gateway: c.Gateway, AuxAddress: c.Aux})
			}
		} else {
			c := ntypes.IPAMConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()}
			if n.Range.IsValid() {
				c.IPRange = n.Range.String()
			}
			out.IPAM.Config = []ntypes.IPAMConfig{c}
		}
	} else {
		out.EnableIPv4 = false
	}
	if withContainers {
		for _, e := range s.sortedEndpoints(n.ID) {
			out.Containers[e.ContainerID] = ntypes.EndpointResource{Name: strings.TrimPrefix(e.ContainerName, "/"),
				EndpointID: e.ID, MacAddress: e.MAC, IPv4Address: e.Addr.String()}
		}
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Prune removes unused user networks (POST /networks/prune).
func (s *Service) Prune(ctx context.Context, f filters.Args) (ntypes.PruneReport, error) {
	if err := f.Validate(map[string]bool{"until": true, "label": true, "label!": true}); err != nil {
		return ntypes.PruneReport{}, err
	}
	var until time.Time
	if u := f.Get("until"); len(u) > 1 {
		return ntypes.PruneReport{}, errdefs.ErrInvalidArgument.WithMessage("more than one until filter specified")
	} else if len(u) == 1 {
		t, err := parseUntil(u[0])
		if err != nil {
			return ntypes.PruneReport{}, err
		}
		until = t
	}
	s.mu.Lock()
	if s.pruning {
		s.mu.Unlock()
		return ntypes.PruneReport{}, errdefs.ErrConflict.WithMessage("a prune operation is already running")
	}
	s.pruning = true
	defer func() { s.pruning = false; s.mu.Unlock() }()
	var rep ntypes.PruneReport
	var cands []*netRecord
	for _, n := range s.nets {
		cands = append(cands, n)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Name < cands[j].Name })
	for _, n := range cands {
		if isPredefined(n.Name) || len(s.sortedEndpoints(n.ID)) > 0 {
			continue
		}
		if !until.IsZero() && !n.Created.Before(until) {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", n.Labels) {
			continue
		}
		if f.Contains("label!") && f.MatchKVList("label!", n.Labels) {
			continue
		}
		if err := s.removeLocked(ctx, n); err != nil {
			log.G(ctx).WithError(err).WithField("network", n.Name).Warn("prune network")
			continue
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
	}
	if s.events != nil {
		s.events.Log("prune", eventtypes.NetworkEventType, eventtypes.Actor{Attributes: map[string]string{"reclaimed": "0"}})
	}
	return rep, nil
}

func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(secs, 0), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse value as time or duration: %q", v))
}

var _ = errors.Wrap
