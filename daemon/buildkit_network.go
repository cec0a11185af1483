package daemon

import (
	"context"
	"sync"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/daemon/config"
	"github.com/berthd/berthd/daemon/network"
	"github.com/berthd/berthd/image/buildkit"
)

// buildNetworks is BuildKit's view of the network service: a RUN step's sandbox is a namespace and
// endpoints keyed by an ID of the container form that no container has. live holds the IDs of the
// sandboxes in use, for buildSandboxEvents.
type buildNetworks struct {
	svc  *network.Service
	live *sync.Map
}

func (b buildNetworks) CreateSandbox(ctx context.Context, id string) (string, error) {
	b.live.Store(id, struct{}{})
	p, err := b.svc.CreateSandbox(ctx, id)
	if err != nil {
		b.live.Delete(id)
	}
	return p, err
}

func (b buildNetworks) Join(ctx context.Context, id, nsPath, name string) error {
	_, _, err := b.svc.Join(ctx, network.JoinRequest{ContainerID: id, ContainerName: id, NetNS: nsPath, Network: name})
	return err
}

func (b buildNetworks) ReleaseSandbox(ctx context.Context, id string) {
	b.svc.ReleaseSandbox(ctx, id)
	b.live.Delete(id)
}

// buildKitNetworking is what RUN steps get of the network configuration: the network service and the
// daemon's --dns, --dns-search and --dns-opt, as dockerd passes them.
func buildKitNetworking(nets *network.Service, nc config.NetworkConfig, live *sync.Map) (buildkit.Networks, *buildkit.DNSConfig) {
	return buildNetworks{svc: nets, live: live}, &buildkit.DNSConfig{Nameservers: nc.DNS, Search: nc.DNSSearch, Options: nc.DNSOptions}
}

// buildSandboxEvents drops the network service's connect and disconnect events of build sandboxes:
// dockerd logs network events for containers only, and a RUN step is not one.
type buildSandboxEvents struct {
	next network.EventLogger
	live *sync.Map
}

func (f buildSandboxEvents) Log(action string, typ eventtypes.Type, actor eventtypes.Actor) {
	if _, ok := f.live.Load(actor.Attributes["container"]); ok {
		return
	}
	f.next.Log(action, typ, actor)
}
