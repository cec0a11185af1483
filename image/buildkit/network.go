// Network (this file): where RUN steps run. As dockerd's BuildKit, the default (no --network, or
// --network=default) gives each RUN a fresh network namespace with an endpoint on berthd's default
// `bridge` network, so a build reaches containers on that bridge and the outside world through the same
// NAT as `docker run`; `--network=host` shares berthd's own namespace and `--network=none` has loopback
// only. Under -b none there is no bridge, and the default falls back to what `docker run` then gets: a
// namespace with loopback only.
//
// resolv.conf and hosts are BuildKit's own (the executor writes them from the host's resolv.conf,
// minus loopback servers, or from the daemon's --dns, --dns-search and --dns-opt), as dockerd's build
// containers get them: the libnetwork sandbox files dockerd also makes are never mounted into a RUN.

package buildkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/buildkit/executor/oci"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pkg/errors"
)

// DefaultNetwork is the network a RUN without --network joins (dockerd's choice too).
const DefaultNetwork = "bridge"

// Networks is what RUN steps need of berthd's network service (daemon/network through an adapter).
// Calls may come from many builds at once.
type Networks interface {
	// CreateSandbox makes a new network namespace, loopback up, for the build step id and returns the
	// path of its namespace file.
	CreateSandbox(ctx context.Context, id string) (string, error)
	// Join attaches the namespace at nsPath to network: its first interface, an address of the
	// network's subnet, the default route through the network's gateway. NotFound: no such network.
	Join(ctx context.Context, id, nsPath, network string) error
	// ReleaseSandbox removes everything of id: its endpoints (veth, address, firewall rules, record)
	// and its namespace file. It never fails; what cannot be removed is logged and reclaimed by the
	// network service at its next start.
	ReleaseSandbox(ctx context.Context, id string)
}

// DNSConfig is the daemon's --dns, --dns-search and --dns-opt for build containers' resolv.conf; an
// empty field keeps what the host's resolv.conf says.
type DNSConfig struct {
	Nameservers, Search, Options []string
}

func (c *DNSConfig) oci() *oci.DNSConfig {
	if c == nil || (len(c.Nameservers) == 0 && len(c.Search) == 0 && len(c.Options) == 0) {
		return nil
	}
	return &oci.DNSConfig{Nameservers: c.Nameservers, SearchDomains: c.Search, Options: c.Options}
}

// NetworkProviders are the providers of RUN's three network modes over nets.
func NetworkProviders(nets Networks) map[pb.NetMode]network.Provider {
	return map[pb.NetMode]network.Provider{
		pb.NetMode_UNSET: &bridgeProvider{nets: nets, network: DefaultNetwork},
		pb.NetMode_HOST:  network.NewHostProvider(),
		pb.NetMode_NONE:  network.NewNoneProvider(),
	}
}

// bridgeProvider gives each RUN its own namespace on network.
type bridgeProvider struct {
	nets    Networks
	network string
	// missing is set once the network turned out not to exist (-b none): it cannot appear later, as
	// the default bridge is made at start only, so later steps skip the attempt.
	missing atomic.Bool
}

// New makes the namespace of one RUN. The executor closes it when the step has ended, failed or been
// cancelled; ctx may be cancelled by then, so the release runs without its cancellation.
func (p *bridgeProvider) New(ctx context.Context, hostname string) (network.Namespace, error) {
	if p.missing.Load() {
		return noneNamespace{}, nil
	}
	id, err := sandboxID()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	defer func() {
		log.G(ctx).WithField("sandbox", id).WithField("took", time.Since(start)).Debug("build step networking set up")
	}()
	path, err := p.nets.CreateSandbox(ctx, id)
	if err != nil {
		return nil, errors.Wrap(err, "create build network namespace")
	}
	ns := &bridgeNamespace{ctx: context.WithoutCancel(ctx), nets: p.nets, id: id, path: path}
	if err := p.nets.Join(ctx, id, path, p.network); err != nil {
		ns.Close()
		if errdefs.IsNotFound(err) {
			log.G(ctx).WithField("network", p.network).Debug("no default network: RUN steps get loopback only")
			p.missing.Store(true)
			return noneNamespace{}, nil
		}
		return nil, errors.Wrapf(err, "attach build step to network %s", p.network)
	}
	return ns, nil
}

// Close has nothing to release: every namespace releases itself.
func (p *bridgeProvider) Close() error { return nil }

// sandboxID names a RUN's sandbox as a container is named (64 hex digits), so that it shares the
// network service's namespace directory and endpoint records with containers without ever clashing.
func sandboxID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", errors.Wrap(err, "sandbox id")
	}
	return hex.EncodeToString(b), nil
}

type bridgeNamespace struct {
	ctx  context.Context
	nets Networks
	id   string
	path string
	once sync.Once
}

// Set points the step's network namespace at the sandbox's.
func (n *bridgeNamespace) Set(s *specs.Spec) error {
	return setNetNS(s, n.path)
}

// Close releases the sandbox once, however often the executor calls it.
func (n *bridgeNamespace) Close() error {
	n.once.Do(func() {
		start := time.Now()
		n.nets.ReleaseSandbox(n.ctx, n.id)
		log.G(n.ctx).WithField("sandbox", n.id).WithField("took", time.Since(start)).Debug("build step networking released")
	})
	return nil
}

func (n *bridgeNamespace) Sample() (*resourcestypes.NetworkSample, error) { return nil, nil }

// noneNamespace leaves the spec's own new namespace in place: runc brings its loopback up.
type noneNamespace struct{}

func (noneNamespace) Set(*specs.Spec) error                          { return nil }
func (noneNamespace) Close() error                                   { return nil }
func (noneNamespace) Sample() (*resourcestypes.NetworkSample, error) { return nil, nil }

// setNetNS replaces the spec's network namespace entry by one joining path.
func setNetNS(s *specs.Spec, path string) error {
	if s.Linux == nil {
		return errors.New("build step spec has no linux section")
	}
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = path
			return nil
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
	return nil
}
