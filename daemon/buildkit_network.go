package daemon

import (
	"context"

	"github.com/berthd/berthd/daemon/network"
	"github.com/berthd/berthd/image/buildkit"
)

// buildNetworks is BuildKit's view of the network service: a RUN step's sandbox is a namespace and
// endpoints keyed by an ID of the container form that no container has.
type buildNetworks struct{ svc *network.Service }

func (b buildNetworks) CreateSandbox(ctx context.Context, id string) (string, error) {
	return b.svc.CreateSandbox(ctx, id)
}

func (b buildNetworks) Join(ctx context.Context, id, nsPath, name string) error {
	_, _, err := b.svc.Join(ctx, network.JoinRequest{ContainerID: id, ContainerName: id, NetNS: nsPath, Network: name})
	return err
}

func (b buildNetworks) ReleaseSandbox(ctx context.Context, id string) { b.svc.ReleaseSandbox(ctx, id) }

// buildKitNetworking is what RUN steps get of the network configuration: the network service and the
// daemon's --dns, --dns-search and --dns-opt, as dockerd passes them.
func (d *Daemon) buildKitNetworking() (buildkit.Networks, *buildkit.DNSConfig) {
	nc := d.cfg.NetworkConfig
	return buildNetworks{d.nets}, &buildkit.DNSConfig{Nameservers: nc.DNS, Search: nc.DNSSearch, Options: nc.DNSOptions}
}
