// Package portmap turns a container's PortBindings / PublishAllPorts into concrete host bindings and
// reserves each host port by holding a bound socket for as long as it is published (as dockerd's
// allocator does), so another program cannot take it and a second container's start fails with dockerd's
// message. Ephemeral ports are handed out in sequence from ip_local_port_range. The sockets never carry
// traffic: the kernel DNATs it. Stdlib, x/sys and errdefs only.
package portmap

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Spec is one requested binding: container port/proto, host IP (may be unspecified) and host port
// range (0,0 = ephemeral).
type Spec struct {
	Proto          string
	ContainerPort  int
	HostIP         netip.Addr
	HostLo, HostHi int
}

// Binding is an allocated binding.
type Binding struct {
	Proto         string
	ContainerPort int
	HostIP        netip.Addr
	HostPort      int
}

// Key is "80/tcp".
func (b Binding) Key() string { return fmt.Sprintf("%d/%s", b.ContainerPort, b.Proto) }

// ParsePortKey parses "80/tcp" (proto defaults to tcp).
func ParsePortKey(k string) (int, string, error) {
	p, proto, _ := strings.Cut(k, "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, "", errdefs.ErrInvalidArgument.WithMessage("invalid containerPort: " + p)
	}
	switch proto {
	case "tcp", "udp":
	case "sctp":
		return 0, "", errdefs.ErrInvalidArgument.WithMessage("invalid proto: sctp (not supported by berthd)")
	default:
		return 0, "", errdefs.ErrInvalidArgument.WithMessage("invalid proto: " + proto)
	}
	return n, proto, nil
}

// HostBinding is one PortBindings entry.
type HostBinding struct{ HostIP, HostPort string }

// Specs builds the request list from PortBindings and, when publishAll, every exposed port without a
// binding. defaultIP is the daemon's --ip (zero = 0.0.0.0).
func Specs(bindings map[string][]HostBinding, exposed []string, publishAll bool, defaultIP netip.Addr) ([]Spec, error) {
	var out []Spec
	keys := make([]string, 0, len(bindings))
	for k := range bindings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cp, proto, err := ParsePortKey(k)
		if err != nil {
			return nil, err
		}
		for _, hb := range bindings[k] {
			s := Spec{Proto: proto, ContainerPort: cp, HostIP: defaultIP}
			if hb.HostIP != "" {
				a, err := netip.ParseAddr(strings.Trim(hb.HostIP, "[]"))
				if err != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage("invalid IP address: " + hb.HostIP)
				}
				if a.Is6() && !a.Is4In6() && !a.IsUnspecified() {
					return nil, errdefs.ErrInvalidArgument.WithMessage("publishing on IPv6 address " + hb.HostIP + " is not supported by berthd (no IPv6)")
				}
				if a.Is6() {
					// "::" means every address; berthd has IPv4 only.
					a = netip.IPv4Unspecified()
				}
				s.HostIP = a.Unmap()
			}
			if hb.HostPort != "" {
				lo, hi, ok := strings.Cut(hb.HostPort, "-")
				if !ok {
					hi = lo
				}
				l, err1 := strconv.Atoi(lo)
				h, err2 := strconv.Atoi(hi)
				if err1 != nil || err2 != nil || l < 0 || h > 65535 || l > h {
					return nil, errdefs.ErrInvalidArgument.WithMessage("invalid hostPort: " + hb.HostPort)
				}
				s.HostLo, s.HostHi = l, h
			}
			out = append(out, s)
		}
		if len(bindings[k]) == 0 {
			out = append(out, Spec{Proto: proto, ContainerPort: cp, HostIP: defaultIP})
		}
	}
	if publishAll {
		for _, k := range exposed {
			if _, ok := bindings[k]; ok {
				continue
			}
			cp, proto, err := ParsePortKey(k)
			if err != nil {
				return nil, err
			}
			out = append(out, Spec{Proto: proto, ContainerPort: cp, HostIP: defaultIP})
		}
	}
	return out, nil
}

// Allocator hands out host ports and holds their sockets.
type Allocator struct {
	mu       sync.Mutex
	held     map[string]int // "proto/ip/port" -> fd
	next     map[string]int // per proto: next ephemeral candidate
	lo, hi   int
	byHolder map[string][]string
}

// NewAllocator reads the ephemeral range.
func NewAllocator() *Allocator {
	lo, hi := 49153, 65535
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			l, e1 := strconv.Atoi(f[0])
			h, e2 := strconv.Atoi(f[1])
			if e1 == nil && e2 == nil && l > 0 && l <= h {
				lo, hi = l, h
			}
		}
	}
	return &Allocator{held: map[string]int{}, next: map[string]int{}, lo: lo, hi: hi, byHolder: map[string][]string{}}
}

func key(proto string, ip netip.Addr, port int) string {
	return proto + "/" + ip.String() + "/" + strconv.Itoa(port)
}

// conflicts reports the allocated key that makes (proto, ip, port) unavailable: the same address, or
// either side being 0.0.0.0.
func (a *Allocator) conflicts(proto string, ip netip.Addr, port int) (string, bool) {
	if _, ok := a.held[key(proto, ip, port)]; ok {
		return ip.String(), true
	}
	if !ip.IsUnspecified() {
		if _, ok := a.held[key(proto, netip.IPv4Unspecified(), port)]; ok {
			return "0.0.0.0", true
		}
		return "", false
	}
	suffix := "/" + strconv.Itoa(port)
	for k := range a.held {
		if strings.HasPrefix(k, proto+"/") && strings.HasSuffix(k, suffix) {
			return ip.String(), true
		}
	}
	return "", false
}

// Allocate reserves host ports for specs on behalf of holder (ctrIP names the container in errors).
// All or nothing.
func (a *Allocator) Allocate(holder string, ctrIP netip.Addr, specs []Spec) ([]Binding, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Binding
	var keys []string
	fail := func(err error) ([]Binding, error) {
		for _, k := range keys {
			unix.Close(a.held[k])
			delete(a.held, k)
		}
		return nil, err
	}
	for _, s := range specs {
		ip := s.HostIP
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		var port int
		var err error
		switch {
		case s.HostLo != 0 && s.HostLo == s.HostHi:
			if c, busy := a.conflicts(s.Proto, ip, s.HostLo); busy {
				return fail(errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("Bind for %s:%d failed: port is already allocated", c, s.HostLo)))
			}
			port = s.HostLo
			err = a.hold(s.Proto, ip, port)
			if err != nil {
				return fail(errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("failed to bind host port for %s:%d:%s:%d/%s: %v", ip, port, ctrIP, s.ContainerPort, s.Proto, err)))
			}
		default:
			lo, hi := a.lo, a.hi
			if s.HostLo != 0 {
				lo, hi = s.HostLo, s.HostHi
			}
			port, err = a.pick(s.Proto, ip, lo, hi, s.HostLo == 0)
			if err != nil {
				return fail(err)
			}
		}
		keys = append(keys, key(s.Proto, ip, port))
		out = append(out, Binding{Proto: s.Proto, ContainerPort: s.ContainerPort, HostIP: ip, HostPort: port})
	}
	a.byHolder[holder] = append(a.byHolder[holder], keys...)
	return out, nil
}

func (a *Allocator) pick(proto string, ip netip.Addr, lo, hi int, sequential bool) (int, error) {
	n := hi - lo + 1
	start := lo
	if sequential {
		if nx := a.next[proto]; nx >= lo && nx <= hi {
			start = nx
		}
	}
	for i := 0; i < n; i++ {
		p := lo + (start-lo+i)%n
		if _, busy := a.conflicts(proto, ip, p); busy {
			continue
		}
		if a.hold(proto, ip, p) != nil {
			continue
		}
		if sequential {
			a.next[proto] = p + 1
		}
		return p, nil
	}
	if sequential {
		return 0, errdefs.ErrUnavailable.WithMessage("all ports are allocated")
	}
	return 0, errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("Bind for %s:%d-%d failed: port is already allocated", ip, lo, hi))
}

// hold binds a socket on the port without SO_REUSEADDR, so nobody else can bind it while we hold it.
func (a *Allocator) hold(proto string, ip netip.Addr, port int) error {
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: ip.As4()}); err != nil {
		unix.Close(fd)
		if err == unix.EADDRINUSE {
			return fmt.Errorf("address already in use")
		}
		return err
	}
	a.held[key(proto, ip, port)] = fd
	return nil
}

// Release frees every port of holder.
func (a *Allocator) Release(holder string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range a.byHolder[holder] {
		if fd, ok := a.held[k]; ok {
			unix.Close(fd)
			delete(a.held, k)
		}
	}
	delete(a.byHolder, holder)
}
