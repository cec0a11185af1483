package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/network"
	"github.com/berthd/berthd/daemon/network/bridge"
	"github.com/berthd/berthd/daemon/network/portmap"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/sys/atomicwriter"
)

// Networks is the network service as containers use it (daemon/network.Service). Endpoints live from
// start to stop; the namespace file is created at start and removed at stop.
type Networks interface {
	Resolve(ctx context.Context, term string) (network.NetworkRef, error)
	CreateSandbox(ctx context.Context, containerID string) (string, error)
	ReleaseSandbox(ctx context.Context, containerID string)
	Join(ctx context.Context, req network.JoinRequest) (*ctypes.EndpointSettings, []portmap.Binding, error)
	Leave(ctx context.Context, containerID, network string) error
	Endpoints(containerID string) (map[string]*ctypes.EndpointSettings, []portmap.Binding)
	Stats(containerID string) (map[string]bridge.Counters, error)
	DefaultHostIP() netip.Addr
}

// Networking is the part that owns containers' network attachment: networks at create, endpoints at
// start and stop, network connect/disconnect, NetworkSettings and interface counters. Without
// Config.Networks containers run as with --bridge=none: an own namespace with loopback only.
type Networking struct {
	*store
	cfg *Config
}

// netState is a container's network configuration: the networks it is attached to, by name, with the
// endpoint settings it asked for (network.json, written atomically), and its runtime sandbox.
type netState struct {
	Networks map[string]*ctypes.EndpointSettings
	nsPath   string
}

const netFile = "network.json"

func (c *Container) netConfig() *netState {
	if c.net != nil {
		return c.net
	}
	c.net = &netState{Networks: map[string]*ctypes.EndpointSettings{}}
	if b, err := os.ReadFile(filepath.Join(c.dir, netFile)); err == nil {
		_ = json.Unmarshal(b, &c.net.Networks)
	}
	return c.net
}

func (c *Container) saveNet() error {
	b, err := json.Marshal(c.netConfig().Networks)
	if err != nil {
		return err
	}
	return atomicwriter.WriteFile(filepath.Join(c.dir, netFile), b, 0o600)
}

func isContainerMode(m string) bool { return strings.HasPrefix(m, "container:") }

// prepareNetworks validates the network mode, endpoints and ports at create and returns the networks to
// store, as dockerd: "default" is the bridge network; a user-defined name is resolved to its name.
func (s *Networking) prepareNetworks(ctx context.Context, hc *ctypes.HostConfig, cfg *ctypes.Config, nc *ctypes.NetworkingConfig) (map[string]*ctypes.EndpointSettings, error) {
	mode := hc.NetworkMode
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	if isContainerMode(mode) {
		return nil, errdefs.ErrNotImplemented.WithMessage("network mode " + mode + " is not supported by berthd")
	}
	if _, err := portSpecs(hc, cfg, netip.Addr{}); err != nil {
		return nil, err
	}
	var eps map[string]*ctypes.EndpointSettings
	if nc != nil {
		eps = nc.EndpointsConfig
	}
	out := map[string]*ctypes.EndpointSettings{}
	if s.cfg.Networks == nil {
		switch mode {
		case "bridge", "none":
			if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
				return nil, invalidf("port publishing (-p/-P) needs the bridge network (berthd runs with --bridge=none)")
			}
			out["none"] = &ctypes.EndpointSettings{}
		case "host":
			out["host"] = &ctypes.EndpointSettings{}
		default:
			return nil, errdefs.ErrNotFound.WithMessage("network " + mode + " not found")
		}
		return out, nil
	}
	ref, err := s.cfg.Networks.Resolve(ctx, mode)
	if err != nil && errdefs.IsNotFound(err) && (hc.NetworkMode == "" || hc.NetworkMode == "default") {
		// --bridge=none: the default is a namespace with loopback only, as dockerd's.
		mode = "none"
		ref, err = s.cfg.Networks.Resolve(ctx, mode)
	}
	if err != nil {
		return nil, err
	}
	isDefault := hc.NetworkMode == "" || hc.NetworkMode == "default"
	primary := eps[mode]
	if primary == nil && isDefault {
		primary = eps["default"]
	}
	if primary == nil {
		primary = eps[ref.Name]
	}
	if primary == nil {
		primary = eps[ref.ID]
	}
	if err := validateEndpoint(ref, primary); err != nil {
		return nil, err
	}
	out[ref.Name] = copyEndpoint(primary)
	for k, e := range eps {
		if k == mode || k == ref.Name || k == ref.ID || (isDefault && k == "default") {
			continue
		}
		r, err := s.cfg.Networks.Resolve(ctx, k)
		if err != nil {
			return nil, err
		}
		if ref.Driver != "bridge" || r.Driver != "bridge" {
			if ref.Driver == "null" || r.Driver == "null" {
				return nil, invalidf("container cannot be connected to multiple networks with one of the networks in private (none) mode")
			}
			return nil, invalidf("container sharing network namespace with another container or host cannot be connected to any other network")
		}
		if err := validateEndpoint(r, e); err != nil {
			return nil, err
		}
		out[r.Name] = copyEndpoint(e)
	}
	return out, nil
}

func copyEndpoint(e *ctypes.EndpointSettings) *ctypes.EndpointSettings {
	if e == nil {
		return &ctypes.EndpointSettings{}
	}
	c := *e
	c.NetworkID, c.EndpointID, c.Gateway, c.IPAddress, c.IPPrefixLen = "", "", "", "", 0
	c.IPv6Gateway, c.GlobalIPv6Address, c.GlobalIPv6PrefixLen = "", "", 0
	return &c
}

// validateEndpoint applies dockerd's endpoint checks (network-facts.md §1.6).
func validateEndpoint(ref network.NetworkRef, e *ctypes.EndpointSettings) error {
	if e == nil {
		return nil
	}
	var errs []string
	if e.IPAMConfig != nil && (e.IPAMConfig.IPv4Address != "" || e.IPAMConfig.IPv6Address != "") {
		if !ref.UserDefined {
			errs = append(errs, "user specified IP address is supported on user defined networks only")
		} else if !ref.UserSubnet {
			errs = append(errs, "user specified IP address is supported only when connecting to networks with user configured subnets")
		}
		if a := e.IPAMConfig.IPv4Address; a != "" {
			if ip, err := netip.ParseAddr(a); err != nil || !ip.Is4() {
				errs = append(errs, "invalid IPv4 address: "+a)
			}
		}
		if a := e.IPAMConfig.IPv6Address; a != "" {
			errs = append(errs, "IPv6 address "+a+": IPv6 is not supported by berthd")
		}
	}
	if len(e.Aliases) > 0 && !ref.UserDefined {
		errs = append(errs, "network-scoped alias is supported only for containers in user defined networks")
	}
	if len(errs) > 0 {
		return invalidf("invalid endpoint settings:\n%s", strings.Join(errs, "\n"))
	}
	if e.MacAddress != "" {
		if _, err := parseMAC(e.MacAddress); err != nil {
			return invalidf("invalid MAC address %s", e.MacAddress)
		}
	}
	return nil
}

func parseMAC(s string) ([]byte, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return nil, fmt.Errorf("bad mac")
	}
	out := make([]byte, 6)
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return nil, fmt.Errorf("bad mac")
		}
		out[i] = byte(v)
	}
	return out, nil
}

// portSpecs turns the container's port settings into allocation requests.
func portSpecs(hc *ctypes.HostConfig, cfg *ctypes.Config, defIP netip.Addr) ([]portmap.Spec, error) {
	b := map[string][]portmap.HostBinding{}
	for k, l := range hc.PortBindings {
		var hb []portmap.HostBinding
		for _, x := range l {
			hb = append(hb, portmap.HostBinding{HostIP: x.HostIP, HostPort: x.HostPort})
		}
		b[k] = hb
	}
	var exposed []string
	for k := range cfg.ExposedPorts {
		exposed = append(exposed, k)
	}
	sort.Strings(exposed)
	return portmap.Specs(b, exposed, hc.PublishAllPorts, defIP)
}

// setupNetwork gives a starting container its namespace and endpoints; it returns the namespace path
// for the OCI spec ("" for host mode). c.mu held.
func (s *Networking) setupNetwork(ctx context.Context, c *Container) (string, error) {
	if s.cfg.Networks == nil || c.HostConfig.NetworkMode == "host" {
		return "", nil
	}
	st := c.netConfig()
	if _, ok := st.Networks["host"]; ok {
		return "", nil
	}
	start := time.Now()
	defer func() { log.G(ctx).WithField("took", time.Since(start)).Debug("container networking set up") }()
	p, err := s.cfg.Networks.CreateSandbox(ctx, c.ID)
	if err != nil {
		return "", err
	}
	st.nsPath = p
	specs, err := portSpecs(c.HostConfig, c.Config, s.cfg.Networks.DefaultHostIP())
	if err != nil {
		s.releaseNetwork(ctx, c)
		return "", err
	}
	names := make([]string, 0, len(st.Networks))
	for n := range st.Networks {
		names = append(names, n)
	}
	// The network of NetworkMode goes first: it gets eth0, the default route and the published ports.
	primary := c.HostConfig.NetworkMode
	if primary == "default" {
		primary = "bridge"
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == primary) != (names[j] == primary) {
			return names[i] == primary
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		if name == "none" {
			continue
		}
		_, _, err := s.cfg.Networks.Join(ctx, network.JoinRequest{ContainerID: c.ID, ContainerName: c.Name, NetNS: p,
			Network: name, Config: st.Networks[name], Ports: specs})
		if err != nil {
			s.releaseNetwork(ctx, c)
			if errdefs.IsNotFound(err) {
				return "", errdefs.ErrNotFound.WithMessage("failed to set up container networking: " + err.Error())
			}
			return "", err
		}
		specs = nil
	}
	return p, nil
}

// releaseNetwork removes a stopped container's endpoints and namespace.
func (s *Networking) releaseNetwork(ctx context.Context, c *Container) {
	if s.cfg.Networks == nil {
		return
	}
	start := time.Now()
	s.cfg.Networks.ReleaseSandbox(ctx, c.ID)
	c.netConfig().nsPath = ""
	log.G(ctx).WithField("took", time.Since(start)).Debug("container networking released")
}

// networkSettings renders NetworkSettings.Networks and Ports for inspect and list.
func (s *Networking) networkSettings(ctx context.Context, c *Container, running bool) (map[string]*ctypes.EndpointSettings, map[string][]ctypes.PortBinding, []ctypes.Port) {
	st := c.netConfig()
	out := map[string]*ctypes.EndpointSettings{}
	var live map[string]*ctypes.EndpointSettings
	var bindings []portmap.Binding
	if running && s.cfg.Networks != nil {
		live, bindings = s.cfg.Networks.Endpoints(c.ID)
	}
	for name, e := range st.Networks {
		r := copyEndpoint(e)
		if l := live[name]; l != nil {
			r.NetworkID, r.EndpointID, r.Gateway, r.IPAddress, r.IPPrefixLen, r.MacAddress = l.NetworkID, l.EndpointID, l.Gateway, l.IPAddress, l.IPPrefixLen, l.MacAddress
		} else if s.cfg.Networks != nil {
			if ref, err := s.cfg.Networks.Resolve(ctx, name); err == nil {
				r.NetworkID = ref.ID
			}
		}
		out[name] = r
	}
	ports := map[string][]ctypes.PortBinding{}
	var list []ctypes.Port
	if running {
		for k := range c.Config.ExposedPorts {
			ports[k] = nil
		}
		for k := range c.HostConfig.PortBindings {
			ports[k] = nil
		}
		for _, b := range bindings {
			ports[b.Key()] = append(ports[b.Key()], ctypes.PortBinding{HostIP: b.HostIP.String(), HostPort: strconv.Itoa(b.HostPort)})
			list = append(list, ctypes.Port{IP: b.HostIP.String(), PrivatePort: uint16(b.ContainerPort), PublicPort: uint16(b.HostPort), Type: b.Proto})
		}
		for k, v := range ports {
			if v == nil {
				p, proto, err := portmap.ParsePortKey(k)
				if err == nil {
					list = append(list, ctypes.Port{PrivatePort: uint16(p), Type: proto})
				}
			}
		}
	} else {
		for k := range c.Config.ExposedPorts {
			p, proto, err := portmap.ParsePortKey(k)
			if err == nil {
				list = append(list, ctypes.Port{PrivatePort: uint16(p), Type: proto})
			}
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].PrivatePort != list[j].PrivatePort {
			return list[i].PrivatePort < list[j].PrivatePort
		}
		return list[i].Type < list[j].Type
	})
	return out, ports, list
}

// ConnectNetwork attaches a container to a network: now when it runs, else stored for its next start.
func (s *Networking) ConnectNetwork(ctx context.Context, term, ref string, cfg *ctypes.EndpointSettings) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if s.cfg.Networks == nil {
		return errdefs.ErrNotImplemented.WithMessage("networks are disabled (--bridge=none without networking)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.State.mu.Lock()
	removing, dead := c.State.RemovalInProgress, c.State.Dead
	c.State.mu.Unlock()
	if removing || dead {
		return errdefs.ErrUnknown.WithMessage(fmt.Sprintf("Container %s is marked for removal and cannot be connected or disconnected to the network", c.ID))
	}
	st := c.netConfig()
	nref, err := s.cfg.Networks.Resolve(ctx, term)
	running := c.State.IsRunning()
	if err != nil {
		if running {
			return err
		}
		// dockerd stores an unknown network for a stopped container and fails at start.
		if _, ok := st.Networks[term]; ok {
			return nil
		}
		st.Networks = withNetwork(st.Networks, term, copyEndpoint(cfg))
		return c.saveNet()
	}
	mode := c.HostConfig.NetworkMode
	if nref.Driver == "host" && mode != "host" {
		return invalidf("cannot connect container to host network - container must be created in host network mode")
	}
	if mode == "host" || isContainerMode(mode) {
		return invalidf("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	_, hasNone := st.Networks["none"]
	if nref.Driver == "null" || hasNone {
		return invalidf("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	}
	if err := validateEndpoint(nref, cfg); err != nil {
		return err
	}
	if _, ok := st.Networks[nref.Name]; ok && !running {
		return nil
	}
	if running {
		if _, _, err := s.cfg.Networks.Join(ctx, network.JoinRequest{ContainerID: c.ID, ContainerName: c.Name,
			NetNS: s.sandboxPath(c), Network: nref.ID, Config: cfg}); err != nil {
			return err
		}
	}
	st.Networks = withNetwork(st.Networks, nref.Name, copyEndpoint(cfg))
	return c.saveNet()
}

func (s *Networking) sandboxPath(c *Container) string {
	if st := c.netConfig(); st.nsPath != "" {
		return st.nsPath
	}
	return filepath.Join(filepath.Dir(s.cfg.ExecRoot), "netns", c.ID[:12])
}

// DisconnectNetwork detaches a container from a network.
func (s *Networking) DisconnectNetwork(ctx context.Context, term, ref string, force bool) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if s.cfg.Networks == nil {
		return errdefs.ErrNotImplemented.WithMessage("networks are disabled")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.netConfig()
	name := term
	nref, rerr := s.cfg.Networks.Resolve(ctx, term)
	if rerr == nil {
		name = nref.Name
	}
	if rerr == nil && nref.Driver == "host" && c.HostConfig.NetworkMode == "host" {
		return invalidf("cannot disconnect container from host network - container was created in host network mode")
	}
	if _, ok := st.Networks[name]; !ok {
		if rerr != nil {
			return rerr
		}
		if c.State.IsRunning() {
			return errdefs.ErrUnknown.WithMessage(fmt.Sprintf("container %s is not connected to network %s", c.ID, name))
		}
		return errdefs.ErrUnknown.WithMessage(fmt.Sprintf("container %s is not connected to the network %s", c.ID, name))
	}
	if c.State.IsRunning() && rerr == nil {
		if err := s.cfg.Networks.Leave(ctx, c.ID, nref.ID); err != nil {
			return err
		}
	}
	st.Networks = withNetwork(st.Networks, name, nil)
	return c.saveNet()
}

// inspectNetwork is NetworkSettings of inspect, with dockerd's default-bridge mirrors.
func (s *Networking) inspectNetwork(ctx context.Context, c *Container, running bool) *ctypes.NetworkSettings {
	nets, ports, _ := s.networkSettings(ctx, c, running)
	ns := &ctypes.NetworkSettings{Ports: ports, Networks: nets}
	if running && s.cfg.Networks != nil && c.HostConfig.NetworkMode != "host" {
		ns.SandboxKey = s.sandboxPath(c)
		ns.SandboxID = c.ID
	}
	if b := nets["bridge"]; b != nil {
		ns.EndpointID, ns.Gateway, ns.IPAddress, ns.IPPrefixLen, ns.MacAddress = b.EndpointID, b.Gateway, b.IPAddress, b.IPPrefixLen, b.MacAddress
	}
	return ns
}

// onNetwork is the ps "network" filter: any attached network, by name or ID.
func (s *Networking) onNetwork(c *Container, f interface{ ExactMatch(string, string) bool }) bool {
	for name, e := range c.netConfig().Networks {
		if f.ExactMatch("network", name) || (e.NetworkID != "" && f.ExactMatch("network", e.NetworkID)) {
			return true
		}
	}
	return false
}

// withNetwork returns a copy of m with name set to e (deleted when nil): list and inspect read the map
// without the container's lock, so it is never changed in place.
func withNetwork(m map[string]*ctypes.EndpointSettings, name string, e *ctypes.EndpointSettings) map[string]*ctypes.EndpointSettings {
	out := make(map[string]*ctypes.EndpointSettings, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if e == nil {
		delete(out, name)
	} else {
		out[name] = e
	}
	return out
}

// networkStats are the interface counters of a running container with its own endpoints.
func (s *Networking) networkStats(c *Container) map[string]ctypes.NetworkStats {
	if s.cfg.Networks == nil || !c.State.IsRunning() || c.HostConfig.NetworkMode == "host" {
		return nil
	}
	if _, ok := c.netConfig().Networks["none"]; ok {
		return nil
	}
	cs, err := s.cfg.Networks.Stats(c.ID)
	if err != nil || len(cs) == 0 {
		return nil
	}
	out := make(map[string]ctypes.NetworkStats, len(cs))
	for name, v := range cs {
		out[name] = ctypes.NetworkStats{RxBytes: v.RxBytes, RxPackets: v.RxPackets, RxErrors: v.RxErrors, RxDropped: v.RxDropped,
			TxBytes: v.TxBytes, TxPackets: v.TxPackets, TxErrors: v.TxErrors, TxDropped: v.TxDropped}
	}
	return out
}
