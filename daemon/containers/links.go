package containers

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthd/berthd/daemon/network"
	"github.com/containerd/errdefs"
)

// links resolves a starting container's --link entries on the default bridge: the hosts lines and the
// environment it gets from each child. c.mu held; children are read without their lock (their name,
// config and endpoints only).
func (s *Networking) links(c *Container) ([]network.HostsLink, []string, error) {
	var hosts []network.HostsLink
	var env []string
	switch c.HostConfig.NetworkMode {
	case "", "default", "bridge":
	default:
		// On a user-defined network a link is a DNS alias only the container sees (network service),
		// without hosts lines or environment, as dockerd.
		return nil, nil, nil
	}
	for _, l := range c.HostConfig.Links {
		name, alias, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		if alias == "" {
			alias = name
		}
		alias = alias[strings.LastIndex(alias, "/")+1:]
		child, err := s.get(name)
		if err != nil {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage("could not get container for " + name)
		}
		if !child.State.IsRunning() {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Cannot link to a non running container: %s AS %s/%s", child.Name, c.Name, alias))
		}
		eps, _ := s.cfg.Networks.Endpoints(child.ID)
		ep := eps["bridge"]
		if ep == nil || ep.IPAddress == "" {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage("Cannot link to " + child.Name + ", as it does not belong to the default network")
		}
		ip, err := netip.ParseAddr(ep.IPAddress)
		if err != nil {
			return nil, nil, err
		}
		hosts = append(hosts, network.HostsLink{IP: ip, Alias: alias, Hostname: child.Config.Hostname, Name: strings.TrimPrefix(child.Name, "/")})
		var ports []string
		for p := range child.Config.ExposedPorts {
			ports = append(ports, string(p))
		}
		env = append(env, network.LinkEnv(c.Name, alias, ip, ports, child.Config.Env)...)
	}
	return hosts, env, nil
}

// writeHosts rewrites the started container's hosts file with its addresses and links (dockerd builds
// it at each start). c.mu held.
func (s *Networking) writeHosts(ctx context.Context, c *Container, links []network.HostsLink) error {
	in := network.HostsInput{Hostname: c.Config.Hostname, Domainname: c.Config.Domainname,
		ExtraHosts: c.HostConfig.ExtraHosts, HostGateway: s.cfg.Networks.HostGatewayIPs(), Links: links}
	eps, _ := s.cfg.Networks.Endpoints(c.ID)
	for _, ep := range eps {
		if a, err := netip.ParseAddr(ep.IPAddress); err == nil {
			in.Addrs = append(in.Addrs, a)
		}
	}
	b, err := network.BuildHosts(in)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.dir, "hosts"), b, 0o644)
}

// editHosts adds or removes the lines of a running container's own addresses when it connects to or
// disconnects from a network, keeping the rest of the file (the user's edits) as dockerd does. c.mu held.
func (s *Networking) editHosts(c *Container, add, del string) error {
	var addA, delA []netip.Addr
	if a, err := netip.ParseAddr(add); err == nil {
		addA = append(addA, a)
	}
	if a, err := netip.ParseAddr(del); err == nil {
		delA = append(delA, a)
	}
	p := filepath.Join(c.dir, "hosts")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	// Written in place: the file is bind-mounted into the container by inode.
	return os.WriteFile(p, network.EditHosts(b, c.Config.Hostname, c.Config.Domainname, addA, delA), 0o644)
}
