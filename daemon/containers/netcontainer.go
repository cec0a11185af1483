package containers

import (
	"strings"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/containerd/errdefs"
)

// validateContainerMode refuses what --network container:<x> cannot honour, with dockerd's messages:
// the container's name service and addresses are the other container's.
func validateContainerMode(hc *ctypes.HostConfig, cfg *ctypes.Config) error {
	switch {
	case cfg.Hostname != "":
		return invalidf("conflicting options: hostname and the network mode")
	case len(hc.Links) > 0:
		return invalidf("conflicting options: container type network can't be used with links. This would result in undefined behavior")
	case len(hc.DNS) > 0:
		return invalidf("conflicting options: dns and the network mode")
	case len(hc.ExtraHosts) > 0:
		return invalidf("conflicting options: custom host-to-IP mapping and the network mode")
	case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
		return invalidf("conflicting options: port publishing and the container type network mode")
	case len(cfg.ExposedPorts) > 0:
		return invalidf("conflicting options: port exposing and the container type network mode")
	}
	return nil
}

// netOwner is the container whose namespace and name files c shares (--network container:<x>), or c.
func (s *Networking) netOwner(c *Container) (*Container, error) {
	ref, ok := strings.CutPrefix(c.HostConfig.NetworkMode, "container:")
	if !ok {
		return c, nil
	}
	o, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	if o.ID == c.ID {
		return nil, invalidf("cannot join own network")
	}
	return o, nil
}

// ownerSandbox is the namespace of a running owner for a starting container-mode container.
func (s *Networking) ownerSandbox(c *Container) (string, error) {
	o, err := s.netOwner(c)
	if err != nil {
		return "", err
	}
	if !o.State.IsRunning() {
		return "", errdefs.ErrConflict.WithMessage("cannot join network of a non running container: " + o.ID)
	}
	return s.sandboxPath(o), nil
}

// hostnameOf is the hostname the container's process sees: the owner's in container mode.
func (s *Networking) hostnameOf(c *Container) string {
	if o, err := s.netOwner(c); err == nil {
		return o.Config.Hostname
	}
	return c.Config.Hostname
}
