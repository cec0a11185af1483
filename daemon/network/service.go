// Package network owns networks and their endpoints: the records in bbolt under
// <data-root>/network/network.db, the predefined bridge/host/none networks, the bridge driver (package
// bridge: netlink), IPAM (package ipam), dockerd's iptables layout (package firewall) and published ports
// forwarded by the kernel (package portmap), and each container's network namespace (package sandbox);
// plus the hostname/hosts/resolv.conf files containers get (files.go, hosts.go, resolvconf.go, links.go)
// and the name table of the embedded DNS server at 127.0.0.11 (package dns, names.go). It is the network router's
// backend, and the containers service calls it to give a container a namespace and endpoints at start
// and to take them away at stop. It must not import api/server or daemon/containers.
//
// Bucket layout (schema 1): "meta" {"schema": "1"}, "networks" {id: JSON netRecord},
// "endpoints" {id: JSON epRecord}. A record is committed before the API answers.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/daemon/network/bridge"
	"github.com/berthd/berthd/daemon/network/dns"
	"github.com/berthd/berthd/daemon/network/firewall"
	"github.com/berthd/berthd/daemon/network/ipam"
	"github.com/berthd/berthd/daemon/network/portmap"
	"github.com/containerd/log"
	"github.com/pkg/errors"
	bolt "go.etcd.io/bbolt"
)

// EventLogger receives network events (daemon/events.Events).
type EventLogger interface {
	Log(action string, typ eventtypes.Type, actor eventtypes.Actor)
}

// Config configures the service (daemon flags of network-facts.md §2.2).
type Config struct {
	// Root is <data-root>/network; NetNSDir is <exec-root>/netns.
	Root, NetNSDir string
	// Bridge is -b: "" for docker0 managed by berthd, "none" for no default bridge, else an existing
	// bridge whose address defines the subnet.
	Bridge    string
	BIP       string
	FixedCIDR string
	MTU       int
	Pools     []ipam.Pool
	DefaultIP netip.Addr
	IPTables  bool
	IPForward bool
	IPMasq    bool
	ICC       bool
	// LiveRestore keeps endpoints of running containers across a restart.
	LiveRestore bool
	// DNS are the daemon's upstream servers (--dns); empty: the host's resolv.conf.
	DNS []string
	// DNSSearch and DNSOptions are --dns-search and --dns-opt: defaults for containers' resolv.conf.
	DNSSearch, DNSOptions []string
	// HostGatewayIPs is daemon.json host-gateway-ip(s).
	HostGatewayIPs []netip.Addr
}

// Service is the network service. Safe for concurrent use; mu guards the maps, which mirror the db.
type Service struct {
	cfg    Config
	db     *bolt.DB
	store  store
	fw     *firewall.Firewall
	ports  *portmap.Allocator
	events EventLogger

	mu     sync.Mutex
	nets   map[string]*netRecord
	eps    map[string]*epRecord
	lastIP map[string]netip.Addr
	// pruning makes a second concurrent prune a conflict, as dockerd.
	pruning bool
	// dns is the embedded DNS server (names.go).
	dns *dns.Resolver
}

// netRecord is a stored network.
type netRecord struct {
	ID         string
	Name       string
	Driver     string
	Created    time.Time
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigOnly bool
	Options    map[string]string
	Labels     map[string]string
	IPAMDriver string
	IPAMOpts   map[string]string
	// UserIPAM are the pools as requested; Subnet/Range/Gateway/Aux what is in use.
	UserIPAM []ipam.Config
	Subnet   netip.Prefix
	Range    netip.Prefix
	Gateway  netip.Addr
	Aux      []netip.Addr
	Bridge   string
	MTU      int
	Masq     bool
	ICC      bool
	HostIP   netip.Addr
	// External: the bridge is the admin's (-b), never created or deleted by berthd.
	External bool
}

// epRecord is a stored endpoint (a container's attachment to a network while it runs).
type epRecord struct {
	ID            string
	NetworkID     string
	ContainerID   string
	ContainerName string
	NetNS         string
	HostIf        string
	IfName        string
	Addr          netip.Prefix
	MAC           string
	Ports         []portmap.Binding
	// Aliases and Hostname are names the embedded DNS answers for (names.go).
	Aliases  []string `json:",omitempty"`
	Hostname string   `json:",omitempty"`
	// DNS and DNSOptions are the container's --dns and --dns-option: its server's upstreams and
	// ndots rule, kept for a restore.
	DNS        []string `json:",omitempty"`
	DNSOptions []string `json:",omitempty"`
	// Links are the container's --link entries on this user-defined network, alias to container name:
	// names only this container resolves.
	Links map[string]string `json:",omitempty"`
}

var (
	bucketMeta      = []byte("meta")
	bucketNetworks  = []byte("networks")
	bucketEndpoints = []byte("endpoints")
)

// New opens the store, sets up the firewall and the predefined networks, restores user networks and
// removes what a previous run left (endpoints of containers that are not kept, stale veths).
func New(ctx context.Context, cfg Config, ev EventLogger) (*Service, error) {
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.NetNSDir, 0o711); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(cfg.Root, "network.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, errors.Wrap(err, "open network store")
	}
	s := &Service{cfg: cfg, db: db, store: store{db}, ports: portmap.NewAllocator(), events: ev,
		nets: map[string]*netRecord{}, eps: map[string]*epRecord{}, lastIP: map[string]netip.Addr{}}
	s.dns = newResolver(s)
	if err := load(db, s.nets, s.eps); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.setup(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store. Endpoints stay: the containers service released them as it stopped
// containers (or kept them for live-restore).
func (s *Service) Close() error { return s.db.Close() }

func load(db *bolt.DB, nets map[string]*netRecord, eps map[string]*epRecord) error {
	return db.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := m.Get([]byte("schema")); v != nil && string(v) != "1" {
			return errors.Errorf("network store schema %s is not supported", v)
		}
		if err := m.Put([]byte("schema"), []byte("1")); err != nil {
			return err
		}
		nb, err := tx.CreateBucketIfNotExists(bucketNetworks)
		if err != nil {
			return err
		}
		eb, err := tx.CreateBucketIfNotExists(bucketEndpoints)
		if err != nil {
			return err
		}
		if err := nb.ForEach(func(k, v []byte) error {
			var n netRecord
			if err := json.Unmarshal(v, &n); err != nil {
				return errors.Wrapf(err, "network %s", k)
			}
			nets[n.ID] = &n
			return nil
		}); err != nil {
			return err
		}
		return eb.ForEach(func(k, v []byte) error {
			var e epRecord
			if err := json.Unmarshal(v, &e); err != nil {
				return errors.Wrapf(err, "endpoint %s", k)
			}
			eps[e.ID] = &e
			return nil
		})
	})
}

// store writes records; each call is one committed transaction.
type store struct{ db *bolt.DB }

func (st store) putNetwork(n *netRecord) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Put([]byte(n.ID), b) })
}

func (st store) deleteNetworkRecord(id string) error {
	return st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Delete([]byte(id)) })
}

func (st store) putEndpoint(e *epRecord) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEndpoints).Put([]byte(e.ID), b) })
}

func (st store) deleteEndpointRecord(id string) error {
	return st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEndpoints).Delete([]byte(id)) })
}

// setup brings the kernel in line with the records: firewall chains rebuilt, bridges of stored networks
// re-created with their rules, endpoints of a previous run torn down unless live-restore keeps them.
func (s *Service) setup(ctx context.Context) error {
	dropForward := false
	if s.cfg.IPForward {
		flipped, err := bridge.EnableForwarding()
		if err != nil {
			return err
		}
		dropForward = flipped && s.cfg.IPTables
	}
	if s.cfg.IPTables {
		fw, err := firewall.New()
		if err != nil {
			return err
		}
		if err := fw.Setup(dropForward); err != nil {
			return err
		}
		s.fw = fw
	}
	if err := s.setupPredefined(ctx); err != nil {
		return err
	}
	bridges := map[string]bool{}
	for _, n := range s.nets {
		if n.Driver != "bridge" {
			continue
		}
		if err := s.programNetwork(n); err != nil {
			return errors.Wrapf(err, "network %s", n.Name)
		}
		bridges[n.Bridge] = true
	}
	kept := map[string]bool{}
	for id, e := range s.eps {
		n := s.nets[e.NetworkID]
		if s.cfg.LiveRestore && n != nil && fileExists(e.NetNS) {
			// Kept until the containers service says whether its container still runs (Reconcile).
			kept[e.HostIf] = true
			if err := s.reprogramEndpoint(ctx, n, e); err != nil {
				log.G(ctx).WithError(err).WithField("endpoint", id).Warn("restore endpoint")
			}
			startDNS(ctx, s, e, false)
			continue
		}
		s.dropEndpoint(ctx, e)
	}
	for _, v := range bridge.StaleVeths(bridges) {
		if !kept[v] {
			log.G(ctx).WithField("veth", v).Info("removing stale veth of an earlier run")
			_ = bridge.Delete(v)
		}
	}
	// Namespace files of containers that no longer run.
	ents, _ := os.ReadDir(s.cfg.NetNSDir)
	inUse := map[string]bool{}
	for _, e := range s.eps {
		inUse[e.NetNS] = true
	}
	for _, ent := range ents {
		p := filepath.Join(s.cfg.NetNSDir, ent.Name())
		if !inUse[p] && !s.cfg.LiveRestore {
			_ = removeNetNS(p)
		}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// newID is 64 random hex digits.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Service) logEvent(action string, n *netRecord, extra map[string]string) {
	if s.events == nil {
		return
	}
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	s.events.Log(action, eventtypes.NetworkEventType, eventtypes.Actor{ID: n.ID, Attributes: attrs})
}
