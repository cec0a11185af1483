package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/network/bridge"
	"github.com/berthd/berthd/daemon/network/firewall"
	"github.com/berthd/berthd/daemon/network/ipam"
	"github.com/berthd/berthd/daemon/network/portmap"
	"github.com/berthd/berthd/daemon/network/sandbox"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

// NetworkRef identifies a network for the containers service.
type NetworkRef struct {
	ID, Name, Driver string
	// UserDefined is false for bridge/host/none.
	UserDefined bool
	// UserSubnet: the network's pool was configured by the user (static IPs allowed).
	UserSubnet bool
}

// Resolve finds a network as container create/connect do (dockerd's FindNetwork wording).
func (s *Service) Resolve(ctx context.Context, term string) (NetworkRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.find(term, lookupAttach)
	if err != nil {
		return NetworkRef{}, err
	}
	return ref(n), nil
}

func ref(n *netRecord) NetworkRef {
	return NetworkRef{ID: n.ID, Name: n.Name, Driver: n.Driver, UserDefined: !isPredefined(n.Name), UserSubnet: len(n.UserIPAM) > 0}
}

// SandboxPath is where a container's namespace file lives.
func (s *Service) SandboxPath(containerID string) string {
	return filepath.Join(s.cfg.NetNSDir, containerID[:12])
}

// CreateSandbox makes the container's network namespace (loopback up) and returns its path.
func (s *Service) CreateSandbox(ctx context.Context, containerID string) (string, error) {
	p := s.SandboxPath(containerID)
	_ = removeNetNS(p) // left by a crash
	if err := sandbox.Create(p); err != nil {
		return "", err
	}
	if err := bridge.LoopbackUp(p); err != nil {
		_ = removeNetNS(p)
		return "", errors.Wrap(err, "loopback")
	}
	return p, nil
}

// ReleaseSandbox removes every endpoint of the container and its namespace.
func (s *Service) ReleaseSandbox(ctx context.Context, containerID string) {
	s.mu.Lock()
	for _, e := range s.eps {
		if e.ContainerID == containerID {
			s.leaveLocked(ctx, e, false)
		}
	}
	s.mu.Unlock()
	s.dns.Stop(containerID)
	if err := removeNetNS(s.SandboxPath(containerID)); err != nil {
		log.G(ctx).WithError(err).WithField("container", containerID).Warn("remove network namespace")
	}
}

func removeNetNS(p string) error { return sandbox.Remove(p) }

// JoinRequest attaches a running container to one network.
type JoinRequest struct {
	ContainerID, ContainerName string
	NetNS                      string
	Network                    string // ID or name
	Config                     *ctypes.EndpointSettings
	// Ports are published on this endpoint (the first bridge endpoint of the container).
	Ports []portmap.Spec
	// Hostname is answered by the embedded DNS; DNS are the container's --dns upstreams and
	// DNSOptions its --dns-option (ndots).
	Hostname   string
	DNS        []string
	DNSOptions []string
	// Links are the container's --link entries ("name[:alias]"): on a user-defined network, aliases
	// only this container resolves (dockerd).
	Links []string
}

// Join creates the endpoint: address, veth, routes, published ports. It returns the operational
// settings (NetworkID, EndpointID, Gateway, IPAddress, ...) and the bindings.
func (s *Service) Join(ctx context.Context, req JoinRequest) (_ *ctypes.EndpointSettings, _ []portmap.Binding, retErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.find(req.Network, lookupAttach)
	if err != nil {
		return nil, nil, err
	}
	if n.Driver != "bridge" {
		return nil, nil, errdefs.ErrInvalidArgument.WithMessage("network " + n.Name + " cannot be joined by endpoints")
	}
	for _, e := range s.eps {
		if e.NetworkID == n.ID && e.ContainerID == req.ContainerID {
			return nil, nil, errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", strings.TrimPrefix(req.ContainerName, "/"), n.Name))
		}
	}
	cfg := req.Config
	if cfg == nil {
		cfg = &ctypes.EndpointSettings{}
	}
	inUse := map[netip.Addr]bool{}
	ifNames := map[string]bool{}
	hasGateway := false
	for _, e := range s.eps {
		if e.NetworkID == n.ID {
			inUse[e.Addr.Addr()] = true
		}
		if e.ContainerID == req.ContainerID {
			ifNames[e.IfName] = true
			if o := s.nets[e.NetworkID]; o != nil && !o.Internal {
				hasGateway = true
			}
		}
	}
	// The lowest free ethN: after a disconnect, names are reused, never duplicated.
	ifIdx := 0
	for ifNames[fmt.Sprintf("eth%d", ifIdx)] {
		ifIdx++
	}
	var addr netip.Addr
	if cfg.IPAMConfig != nil && cfg.IPAMConfig.IPv4Address != "" {
		a, err := netip.ParseAddr(cfg.IPAMConfig.IPv4Address)
		if err != nil || !a.Is4() {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage("invalid IPv4 address: " + cfg.IPAMConfig.IPv4Address)
		}
		if inUse[a] || a == n.Gateway {
			return nil, nil, errdefs.ErrPermissionDenied.WithMessage("Address already in use")
		}
		addr = a
	} else {
		sub := ipam.Subnet{Prefix: n.Subnet, Range: n.Range, Gateway: n.Gateway, Aux: n.Aux}
		if addr, err = sub.Allocate(inUse, s.lastIP[n.ID]); err != nil {
			return nil, nil, err
		}
		s.lastIP[n.ID] = addr
	}
	mac := bridge.RandomMAC()
	if cfg.MacAddress != "" {
		if mac, err = net.ParseMAC(cfg.MacAddress); err != nil {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage("invalid MAC address " + cfg.MacAddress)
		}
	}
	e := &epRecord{ID: newID(), NetworkID: n.ID, ContainerID: req.ContainerID, ContainerName: req.ContainerName,
		NetNS: req.NetNS, HostIf: bridge.NewHostName(), IfName: fmt.Sprintf("eth%d", ifIdx),
		Addr: netip.PrefixFrom(addr, n.Subnet.Bits()), MAC: mac.String(), Aliases: cfg.Aliases, Hostname: req.Hostname,
		DNS: req.DNS, DNSOptions: req.DNSOptions}
	if resolvable(n) {
		// --link of run and of network connect (EndpointSettings.Links, where the CLI also puts run's).
		e.Links = linkAliases(append(append([]string(nil), req.Links...), cfg.Links...))
	}
	if v := cfg.DriverOpts["com.docker.network.endpoint.ifname"]; v != "" {
		e.IfName = v
	}
	gw := n.Gateway
	if n.Internal || hasGateway {
		// One default route: through the first non-internal network joined.
		gw = netip.Addr{}
	}
	if err := bridge.AddEndpoint(bridge.Endpoint{Bridge: n.Bridge, HostName: e.HostIf, IfName: e.IfName, NetNS: req.NetNS,
		Addr: e.Addr, Gateway: gw, MAC: mac, MTU: n.MTU, Hairpin: true}); err != nil {
		return nil, nil, errors.Wrap(err, "failed to set up container networking")
	}
	defer func() {
		if retErr != nil {
			_ = bridge.Delete(e.HostIf)
		}
	}()
	if len(req.Ports) > 0 && !n.Internal {
		b, err := s.ports.Allocate(e.ID, addr, req.Ports)
		if err != nil {
			return nil, nil, portErr(req, e, err)
		}
		e.Ports = b
		if err := s.programPorts(n, e); err != nil {
			s.ports.Release(e.ID)
			return nil, nil, portErr(req, e, err)
		}
	}
	if err := s.store.putEndpoint(e); err != nil {
		s.unprogramPorts(ctx, n, e)
		s.ports.Release(e.ID)
		return nil, nil, err
	}
	s.eps[e.ID] = e
	startDNS(ctx, s, e, true)
	s.logEvent("connect", n, map[string]string{"container": req.ContainerID})
	out := *cfg
	out.NetworkID, out.EndpointID = n.ID, e.ID
	out.Gateway, out.IPAddress, out.IPPrefixLen, out.MacAddress = n.Gateway.String(), addr.String(), n.Subnet.Bits(), e.MAC
	return &out, e.Ports, nil
}

func portErr(req JoinRequest, e *epRecord, err error) error {
	msg := fmt.Sprintf("failed to set up container networking: driver failed programming external connectivity on endpoint %s (%s): %v",
		strings.TrimPrefix(req.ContainerName, "/"), e.ID, err)
	if errdefs.IsUnavailable(err) {
		return errdefs.ErrUnavailable.WithMessage(msg)
	}
	return errdefs.ErrUnknown.WithMessage(msg)
}

func fwEndpoint(n *netRecord, e *epRecord) firewall.Endpoint {
	fe := firewall.Endpoint{Bridge: n.Bridge, IP: e.Addr.Addr()}
	for _, b := range e.Ports {
		fe.Ports = append(fe.Ports, firewall.Port{Proto: b.Proto, HostIP: b.HostIP, HostPort: b.HostPort, ContainerPort: b.ContainerPort})
	}
	return fe
}

func (s *Service) programPorts(n *netRecord, e *epRecord) error {
	if s.fw == nil {
		return errdefs.ErrNotImplemented.WithMessage("publishing ports needs iptables (--iptables=false)")
	}
	return s.fw.AddEndpoint(fwEndpoint(n, e))
}

func (s *Service) unprogramPorts(ctx context.Context, n *netRecord, e *epRecord) {
	if s.fw == nil || len(e.Ports) == 0 {
		return
	}
	if err := s.fw.RemoveEndpoint(fwEndpoint(n, e)); err != nil {
		log.G(ctx).WithError(err).WithField("endpoint", e.ID).Warn("remove port rules")
	}
}

// Leave removes the container's endpoint on a network (disconnect of a running container).
func (s *Service) Leave(ctx context.Context, containerID, network string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.find(network, lookupAttach)
	if err != nil {
		return err
	}
	for _, e := range s.eps {
		if e.NetworkID == n.ID && e.ContainerID == containerID {
			s.leaveLocked(ctx, e, true)
			return nil
		}
	}
	return errdefs.ErrUnknown.WithMessage(fmt.Sprintf("container %s is not connected to network %s", containerID, n.Name))
}

// leaveLocked tears an endpoint down; inNS also removes the interface inside a namespace that lives on.
func (s *Service) leaveLocked(ctx context.Context, e *epRecord, inNS bool) {
	n := s.nets[e.NetworkID]
	if n != nil {
		s.unprogramPorts(ctx, n, e)
	}
	s.ports.Release(e.ID)
	if inNS {
		_ = bridge.RemoveInterface(e.NetNS, e.IfName)
	}
	_ = bridge.Delete(e.HostIf)
	if err := s.store.deleteEndpointRecord(e.ID); err != nil {
		log.G(ctx).WithError(err).WithField("endpoint", e.ID).Warn("delete endpoint record")
	}
	delete(s.eps, e.ID)
	if n != nil {
		s.logEvent("disconnect", n, map[string]string{"container": e.ContainerID})
	}
}

// dropEndpoint removes a previous run's endpoint at start-up (no events: nothing was connected).
func (s *Service) dropEndpoint(ctx context.Context, e *epRecord) {
	if n := s.nets[e.NetworkID]; n != nil {
		s.unprogramPorts(ctx, n, e)
	}
	_ = bridge.Delete(e.HostIf)
	_ = removeNetNS(e.NetNS)
	_ = s.store.deleteEndpointRecord(e.ID)
	delete(s.eps, e.ID)
}

// reprogramEndpoint re-installs a live-restored endpoint's port rules and re-holds its ports.
func (s *Service) reprogramEndpoint(ctx context.Context, n *netRecord, e *epRecord) error {
	if len(e.Ports) == 0 {
		return nil
	}
	var specs []portmap.Spec
	for _, b := range e.Ports {
		specs = append(specs, portmap.Spec{Proto: b.Proto, ContainerPort: b.ContainerPort, HostIP: b.HostIP, HostLo: b.HostPort, HostHi: b.HostPort})
	}
	if _, err := s.ports.Allocate(e.ID, e.Addr.Addr(), specs); err != nil {
		return err
	}
	// Rules in built-in chains survived the restart (only the daemon's chains were rebuilt): remove
	// them first so they are not doubled.
	s.unprogramPorts(ctx, n, e)
	return s.programPorts(n, e)
}

// Reconcile drops the kept endpoints of containers that did not survive (live-restore): running lists
// the IDs of containers still running.
func (s *Service) Reconcile(ctx context.Context, running map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.eps {
		if !running[e.ContainerID] {
			s.dropEndpoint(ctx, e)
		}
	}
}

// Endpoints returns the live endpoint settings of a container, by network name, and its bindings.
func (s *Service) Endpoints(containerID string) (map[string]*ctypes.EndpointSettings, []portmap.Binding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*ctypes.EndpointSettings{}
	var ports []portmap.Binding
	for _, e := range s.eps {
		if e.ContainerID != containerID {
			continue
		}
		n := s.nets[e.NetworkID]
		if n == nil {
			continue
		}
		out[n.Name] = &ctypes.EndpointSettings{NetworkID: n.ID, EndpointID: e.ID, Gateway: n.Gateway.String(),
			IPAddress: e.Addr.Addr().String(), IPPrefixLen: e.Addr.Bits(), MacAddress: e.MAC}
		if resolvable(n) {
			out[n.Name].DNSNames = e.DNSNames()
		}
		ports = append(ports, e.Ports...)
	}
	return out, ports
}

// Stats are the per-interface counters of a container's namespace.
func (s *Service) Stats(containerID string) (map[string]bridge.Counters, error) {
	return bridge.Stats(s.SandboxPath(containerID))
}

// DefaultHostIP is --ip: the host address ports are published on when none is given.
func (s *Service) DefaultHostIP() netip.Addr {
	if s.cfg.DefaultIP.IsValid() {
		return s.cfg.DefaultIP
	}
	return netip.IPv4Unspecified()
}
