package daemon

import (
	"context"
	"net/netip"
	"path/filepath"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/api/types/filters"
	ntypes "github.com/berthd/berthd/api/types/network"
	"github.com/berthd/berthd/daemon/network"
	"github.com/berthd/berthd/daemon/network/ipam"
)

// initNetworks (design.md §3 step 5b): the network service over <data-root>/network, with the default
// bridge, the firewall layout and a previous run's leftovers reconciled, before containers restore.
func (d *Daemon) initNetworks(ctx context.Context) error {
	nc := d.cfg.NetworkConfig
	cfg := network.Config{
		Root: filepath.Join(d.cfg.Root, "network"), NetNSDir: filepath.Join(d.cfg.ExecRoot, "netns"),
		Bridge: nc.Bridge, BIP: nc.BIP, FixedCIDR: nc.FixedCIDR, MTU: nc.MTU,
		IPTables: nc.IPTables, IPForward: nc.IPForward, IPMasq: nc.IPMasq, ICC: nc.ICC, LiveRestore: d.cfg.LiveRestore,
		DNS: nc.DNS, DNSSearch: nc.DNSSearch, DNSOptions: nc.DNSOptions,
	}
	if nc.IP != "" {
		cfg.DefaultIP, _ = netip.ParseAddr(nc.IP)
	}
	if nc.HostGatewayIP != "" {
		gw, _ := netip.ParseAddr(nc.HostGatewayIP) // checked by config.Validate
		cfg.HostGatewayIPs = []netip.Addr{gw}
	}
	var bases []string
	var sizes []int
	for _, p := range nc.DefaultAddressPools {
		bases, sizes = append(bases, p.Base), append(sizes, p.Size)
	}
	pools, err := ipam.ParsePools(bases, sizes)
	if err != nil {
		return err
	}
	cfg.Pools = pools
	svc, err := network.New(ctx, cfg, buildSandboxEvents{next: d.events, live: &d.buildSandboxes})
	if err != nil {
		return err
	}
	d.nets = svc
	d.onShutdown("networks", func(context.Context) error { return svc.Close() })
	return nil
}

// NetworkBackend is the network router's backend.
func (d *Daemon) NetworkBackend() *networkBackend { return &networkBackend{d} }

type networkBackend struct{ d *Daemon }

func (b *networkBackend) NetworkList(ctx context.Context, f filters.Args) ([]ntypes.Inspect, error) {
	return b.d.nets.List(ctx, f)
}

func (b *networkBackend) NetworkInspect(ctx context.Context, term string) (ntypes.Inspect, error) {
	return b.d.nets.Inspect(ctx, term)
}

func (b *networkBackend) NetworkCreate(ctx context.Context, req ntypes.CreateRequest) (ntypes.CreateResponse, error) {
	return b.d.nets.Create(ctx, req)
}

func (b *networkBackend) NetworkRemove(ctx context.Context, term string) error {
	return b.d.nets.Remove(ctx, term)
}

func (b *networkBackend) NetworkPrune(ctx context.Context, f filters.Args) (ntypes.PruneReport, error) {
	return b.d.nets.Prune(ctx, f)
}

func (b *networkBackend) NetworkConnect(ctx context.Context, term, ctr string, cfg *ctypes.EndpointSettings) error {
	return b.d.ctrs.svc.Networking().ConnectNetwork(ctx, term, ctr, cfg)
}

func (b *networkBackend) NetworkDisconnect(ctx context.Context, term, ctr string, force bool) error {
	return b.d.ctrs.svc.Networking().DisconnectNetwork(ctx, term, ctr, force)
}

// reconcileNetworks tells the network service which containers survived a restart (live-restore), so
// the endpoints of the others are removed.
func (d *Daemon) reconcileNetworks(ctx context.Context) {
	if d.nets == nil {
		return
	}
	list, err := d.ctrs.svc.Backend().ContainerList(ctx, ctypes.ListOptions{})
	if err != nil {
		return
	}
	running := map[string]bool{}
	for _, c := range list {
		running[c.ID] = true
	}
	d.nets.Reconcile(ctx, running)
}
