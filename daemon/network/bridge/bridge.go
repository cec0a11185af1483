// Package bridge is the Linux bridge driver's device work over netlink: bridges (created, addressed,
// removed), veth pairs joining a container's namespace to a bridge, per-interface counters, and the
// per-interface sysctls the data path needs. No forks: everything is netlink or /proc/sys.
package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Bridge describes one bridge device.
type Bridge struct {
	Name    string
	Gateway netip.Prefix // gateway address with the subnet's prefix length
	MTU     int
	// Hairpin-free published ports from 127.0.0.1 need route_localnet on the bridge.
	RouteLocalnet bool
}

// Ensure creates the bridge if missing (reusing an existing one), sets its address, MTU and brings it up.
func Ensure(b Bridge) error {
	link, err := netlink.LinkByName(b.Name)
	if err != nil {
		if _, ok := err.(netlink.LinkNotFoundError); !ok {
			return errors.Wrapf(err, "look up bridge %s", b.Name)
		}
		la := netlink.NewLinkAttrs()
		la.Name = b.Name
		la.HardwareAddr = RandomMAC()
		if b.MTU > 0 {
			la.MTU = b.MTU
		}
		br := &netlink.Bridge{LinkAttrs: la}
		if err := netlink.LinkAdd(br); err != nil {
			return errors.Wrapf(err, "create bridge %s", b.Name)
		}
		if link, err = netlink.LinkByName(b.Name); err != nil {
			return err
		}
	} else if b.MTU > 0 && link.Attrs().MTU != b.MTU {
		_ = netlink.LinkSetMTU(link, b.MTU)
	}
	if b.Gateway.IsValid() {
		addr := &netlink.Addr{IPNet: ipNet(b.Gateway)}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return errors.Wrapf(err, "set address of bridge %s", b.Name)
		}
	}
	_ = writeSysctl("net/ipv6/conf/"+b.Name+"/accept_ra", "0")
	if b.RouteLocalnet {
		if err := writeSysctl("net/ipv4/conf/"+b.Name+"/route_localnet", "1"); err != nil {
			return err
		}
	}
	return netlink.LinkSetUp(link)
}

// Exists reports whether a link of this name exists.
func Exists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// Delete removes a bridge (or any link); missing is not an error.
func Delete(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	return netlink.LinkDel(link)
}

// Endpoint is one veth pair to set up.
type Endpoint struct {
	Bridge   string
	HostName string // host end, veth + 7 hex
	IfName   string // in the container, eth0...
	NetNS    string // namespace file
	Addr     netip.Prefix
	Gateway  netip.Addr // zero: no default route (internal networks)
	MAC      net.HardwareAddr
	MTU      int
	Hairpin  bool
}

// NewHostName is veth + 7 random hex, as dockerd names host ends.
func NewHostName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "veth" + hex.EncodeToString(b)[:7]
}

// RandomMAC is a random locally administered unicast MAC.
func RandomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = (b[0] & 0xfe) | 0x02
	return b
}

// AddEndpoint creates the veth pair, moves the peer into the namespace, configures both ends. On error
// nothing is left.
func AddEndpoint(ep Endpoint) (retErr error) {
	br, err := netlink.LinkByName(ep.Bridge)
	if err != nil {
		return errors.Wrapf(err, "bridge %s", ep.Bridge)
	}
	ns, err := netns.GetFromPath(ep.NetNS)
	if err != nil {
		return errors.Wrap(err, "open netns")
	}
	defer ns.Close()
	peerTmp := "vp" + ep.HostName[4:]
	la := netlink.NewLinkAttrs()
	la.Name = ep.HostName
	la.MTU = br.Attrs().MTU
	if ep.MTU > 0 {
		la.MTU = ep.MTU
	}
	veth := &netlink.Veth{LinkAttrs: la, PeerName: peerTmp, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return errors.Wrap(err, "create veth pair")
	}
	defer func() {
		if retErr != nil {
			_ = Delete(ep.HostName)
		}
	}()
	host, err := netlink.LinkByName(ep.HostName)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return errors.Wrap(err, "attach veth to bridge")
	}
	if ep.Hairpin {
		if err := netlink.LinkSetHairpin(host, true); err != nil {
			return errors.Wrap(err, "set hairpin")
		}
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	peer, err := h.LinkByName(peerTmp)
	if err != nil {
		return err
	}
	if err := h.LinkSetName(peer, ep.IfName); err != nil {
		return errors.Wrapf(err, "rename to %s", ep.IfName)
	}
	if len(ep.MAC) > 0 {
		if err := h.LinkSetHardwareAddr(peer, ep.MAC); err != nil {
			return errors.Wrap(err, "set MAC address")
		}
	}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(ep.Addr)}); err != nil {
		return errors.Wrap(err, "set address")
	}
	if err := h.LinkSetUp(peer); err != nil {
		return err
	}
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	if ep.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IP(ep.Gateway.AsSlice())}
		if err := h.RouteAdd(r); err != nil && !os.IsExist(err) {
			return errors.Wrap(err, "add default route")
		}
	}
	return nil
}

// handleAt is a netlink handle working inside the namespace at nsPath; the namespace's fd is only needed
// to create it.
func handleAt(nsPath string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// LoopbackUp brings lo up in a namespace (containers with no endpoint still have loopback).
func LoopbackUp(nsPath string) error {
	h, err := handleAt(nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// RemoveInterface deletes an interface inside a namespace (disconnect of a running container); the
// host end goes with it.
func RemoveInterface(nsPath, ifName string) error {
	h, err := handleAt(nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(ifName)
	if err != nil {
		return nil
	}
	return h.LinkDel(l)
}

// Counters are one interface's statistics (docker stats "networks").
type Counters struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Stats returns the counters of every non-loopback interface in the namespace.
func Stats(nsPath string) (map[string]Counters, error) {
	h, err := handleAt(nsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, err
	}
	out := map[string]Counters{}
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" || a.Statistics == nil {
			continue
		}
		s := a.Statistics
		out[a.Name] = Counters{s.RxBytes, s.RxPackets, s.RxErrors, s.RxDropped, s.TxBytes, s.TxPackets, s.TxErrors, s.TxDropped}
	}
	return out, nil
}

// StaleVeths lists host-side veths enslaved to any of the bridges whose peer is gone (namespace deleted).
func StaleVeths(bridges map[string]bool) []string {
	links, err := netlink.LinkList()
	if err != nil {
		return nil
	}
	idx := map[int]string{}
	for _, l := range links {
		if bridges[l.Attrs().Name] {
			idx[l.Attrs().Index] = l.Attrs().Name
		}
	}
	var out []string
	for _, l := range links {
		a := l.Attrs()
		if _, ok := l.(*netlink.Veth); ok && strings.HasPrefix(a.Name, "veth") && idx[a.MasterIndex] != "" {
			out = append(out, a.Name)
		}
	}
	return out
}

// EnableForwarding writes net.ipv4.ip_forward=1 and reports whether it was off.
func EnableForwarding() (bool, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(string(b)) == "1" {
		return false, nil
	}
	return true, writeSysctl("net/ipv4/ip_forward", "1")
}

func writeSysctl(key, val string) error {
	if err := os.WriteFile("/proc/sys/"+key, []byte(val), 0o644); err != nil {
		return errors.Wrapf(err, "set sysctl %s", strings.ReplaceAll(key, "/", "."))
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ValidMTU checks an MTU option as dockerd does.
func ValidMTU(s string) (int, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 68 || fmt.Sprint(n) != s {
		return 0, errdefs.ErrInvalidArgument.WithMessage("invalid MTU number: " + s)
	}
	return n, nil
}

// HostRoutes are the IPv4 destinations of on-link routes not through one of skip (the daemon's own
// bridges): pools overlapping them would cut the host off a network it uses.
func HostRoutes(skip map[string]bool) []netip.Prefix {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil || r.Gw != nil {
			continue
		}
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && skip[l.Attrs().Name] {
			continue
		}
		ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, ones).Masked())
	}
	return out
}
