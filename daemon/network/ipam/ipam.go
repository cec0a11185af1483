// Package ipam allocates IPv4 subnets from address pools and addresses inside a subnet, as dockerd's
// default IPAM: the first free block of the pools wins (so freed blocks are reused), the gateway is the
// first address unless given, and container addresses are handed out in order after the last one given.
// Pure logic over net/netip; the caller persists what it allocates. Stdlib and errdefs only.
package ipam

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/containerd/errdefs"
)

// Pool is a base block split into subnets of Size bits (daemon.json default-address-pools).
type Pool struct {
	Base netip.Prefix
	Size int
}

// DefaultPools are dockerd's built-in local pools.
func DefaultPools() []Pool {
	var out []Pool
	for _, s := range []string{"172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16", "172.20.0.0/14", "172.24.0.0/14", "172.28.0.0/14"} {
		out = append(out, Pool{Base: netip.MustParsePrefix(s), Size: 16})
	}
	return append(out, Pool{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20})
}

// ParsePools parses "base=CIDR,size=N" flag values or daemon.json objects already split.
func ParsePools(bases []string, sizes []int) ([]Pool, error) {
	var out []Pool
	for i, b := range bases {
		p, err := netip.ParsePrefix(b)
		if err != nil || !p.Addr().Is4() {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid base pool %q", b))
		}
		if sizes[i] < p.Bits() || sizes[i] > 32 {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid pools size: %d", sizes[i]))
		}
		out = append(out, Pool{Base: p.Masked(), Size: sizes[i]})
	}
	return out, nil
}

// Overlaps reports whether a and b share an address.
func Overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// NextSubnet returns the first block of pools that overlaps none of used.
func NextSubnet(pools []Pool, used []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		step := uint64(1) << (32 - p.Size)
		start := ip4ToU(p.Base.Addr())
		end := start + (uint64(1) << (32 - p.Base.Bits()))
		for a := start; a < end; a += step {
			cand := netip.PrefixFrom(uToIP4(a), p.Size)
			free := true
			for _, u := range used {
				if cand.Overlaps(u) {
					free = false
					break
				}
			}
			if free {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, errdefs.ErrInvalidArgument.WithMessage("all predefined address pools have been fully subnetted")
}

// Subnet is one allocated IPv4 block with its gateway and optional allocation range.
type Subnet struct {
	Prefix  netip.Prefix
	Range   netip.Prefix // zero: whole prefix
	Gateway netip.Addr
	Aux     []netip.Addr
}

// FirstHost is the first usable address of p (the default gateway).
func FirstHost(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// Allocate returns a free address of s after last (zero: from the start), skipping the network and
// broadcast addresses, the gateway, aux addresses and inUse. AlreadyExists... never: exhaustion is
// Unavailable ("no available IPv4 addresses on this network's address pools").
func (s Subnet) Allocate(inUse map[netip.Addr]bool, last netip.Addr) (netip.Addr, error) {
	r := s.Range
	if !r.IsValid() {
		r = s.Prefix
	}
	first := ip4ToU(r.Masked().Addr())
	size := uint64(1) << (32 - r.Bits())
	netAddr := ip4ToU(s.Prefix.Masked().Addr())
	bcast := netAddr + (uint64(1) << (32 - s.Prefix.Bits())) - 1
	off := uint64(0)
	if last.IsValid() && r.Contains(last) {
		off = ip4ToU(last) - first + 1
	}
	for i := uint64(0); i < size; i++ {
		u := first + (off+i)%size
		if u == netAddr || u == bcast {
			continue
		}
		a := uToIP4(u)
		if a == s.Gateway || inUse[a] || contains(s.Aux, a) {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, errdefs.ErrUnavailable.WithMessage("no available IPv4 addresses on this network's address pools")
}

func contains(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// Config is one user-requested pool (IPAM.Config entry) before validation.
type Config struct {
	Subnet, IPRange, Gateway string
	Aux                      map[string]string
}

// Validate checks user pools as dockerd does, returning every problem joined under "invalid network
// config:" (InvalidArgument), and the parsed subnets.
func Validate(cfgs []Config) ([]Subnet, error) {
	var errs []string
	var out []Subnet
	for _, c := range cfgs {
		var s Subnet
		if c.Subnet != "" {
			p, err := netip.ParsePrefix(c.Subnet)
			switch {
			case err != nil:
				errs = append(errs, fmt.Sprintf("invalid subnet %s: invalid CIDR block notation", c.Subnet))
				continue
			case p.Masked() != p:
				errs = append(errs, fmt.Sprintf("invalid subnet %s: it should be %s", c.Subnet, p.Masked()))
				continue
			case !p.Addr().Is4():
				// IPv6 pools are only meaningful with IPv6, which berthd does not implement.
				errs = append(errs, fmt.Sprintf("invalid subnet %s: IPv6 is not supported by berthd", c.Subnet))
				continue
			}
			s.Prefix = p
		}
		if c.IPRange != "" {
			r, err := netip.ParsePrefix(c.IPRange)
			switch {
			case err != nil:
				errs = append(errs, fmt.Sprintf("invalid ip-range %s: invalid CIDR block notation", c.IPRange))
			case !s.Prefix.IsValid():
				errs = append(errs, fmt.Sprintf("invalid ip-range %s: parent subnet is not specified", c.IPRange))
			case r.Bits() < s.Prefix.Bits():
				errs = append(errs, fmt.Sprintf("invalid ip-range %s: CIDR block is bigger than its parent subnet %s", c.IPRange, s.Prefix))
			case r.Masked() != r:
				errs = append(errs, fmt.Sprintf("invalid ip-range %s: it should be %s", c.IPRange, r.Masked()))
			case !s.Prefix.Contains(r.Addr()):
				errs = append(errs, fmt.Sprintf("invalid ip-range %s: parent subnet %s doesn't contain ip-range", c.IPRange, s.Prefix))
			default:
				s.Range = r
			}
		}
		if c.Gateway != "" {
			g, err := netip.ParseAddr(c.Gateway)
			switch {
			case err != nil:
				errs = append(errs, fmt.Sprintf("invalid gateway %s: invalid address", c.Gateway))
			case !s.Prefix.IsValid():
				errs = append(errs, fmt.Sprintf("invalid gateway %s: parent subnet is not specified", c.Gateway))
			case !s.Prefix.Contains(g):
				errs = append(errs, fmt.Sprintf("invalid gateway %s: parent subnet %s doesn't contain this address", c.Gateway, s.Prefix))
			default:
				s.Gateway = g
			}
		}
		for k, v := range c.Aux {
			a, err := netip.ParseAddr(v)
			switch {
			case err != nil:
				errs = append(errs, fmt.Sprintf("invalid auxiliary address %s: invalid address", k))
			case !s.Prefix.IsValid():
				errs = append(errs, fmt.Sprintf("invalid auxiliary address %s: parent subnet is not specified", k))
			case !s.Prefix.Contains(a):
				errs = append(errs, fmt.Sprintf("invalid auxiliary address %s: parent subnet %s doesn't contain this address", k, s.Prefix))
			default:
				s.Aux = append(s.Aux, a)
			}
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid network config:\n" + strings.Join(errs, "\n"))
	}
	return out, nil
}

func ip4ToU(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

func uToIP4(u uint64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}
