// Package firewall programs dockerd's iptables layout (network-facts.md §3) for the bridge driver, in
// the form dockerd uses with the userland proxy off, since berthd forwards published ports in the kernel:
// filter DOCKER-USER (created if missing, never flushed, jumped to first from FORWARD), DOCKER-FORWARD,
// DOCKER-CT, DOCKER-BRIDGE, DOCKER, DOCKER-ISOLATION-STAGE-1/2, nat DOCKER. Rules in built-in chains are
// checked before being added; per-port rules of one container go in one iptables-restore --noflush batch,
// so publishing 1,000 ports costs about one fork. Rules go through the iptables command (nf_tables or
// legacy backend alike), so admins see them with `iptables -L`.
package firewall

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"
	"github.com/pkg/errors"
)

// Chain names.
const (
	ChainUser     = "DOCKER-USER"
	ChainForward  = "DOCKER-FORWARD"
	ChainCT       = "DOCKER-CT"
	ChainBridge   = "DOCKER-BRIDGE"
	ChainDocker   = "DOCKER"
	ChainIsolate1 = "DOCKER-ISOLATION-STAGE-1"
	ChainIsolate2 = "DOCKER-ISOLATION-STAGE-2"
)

// Firewall is the IPv4 iptables of the daemon's namespace. Safe for concurrent use.
type Firewall struct {
	mu  sync.Mutex
	ipt *iptables.IPTables
}

// New finds iptables.
func New() (*Firewall, error) {
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return nil, errors.Wrap(err, "iptables")
	}
	return &Firewall{ipt: ipt}, nil
}

// Setup rebuilds the daemon's chains from scratch (a crashed run's rules go with the flush) and hooks
// them into FORWARD and nat PREROUTING/OUTPUT; DOCKER-USER keeps its content. dropForward sets the FORWARD
// policy to DROP (only when the daemon itself turned ip_forward on, as dockerd).
func (f *Firewall) Setup(dropForward bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b bytes.Buffer
	b.WriteString("*filter\n")
	for _, c := range []string{ChainForward, ChainCT, ChainBridge, ChainDocker, ChainIsolate1, ChainIsolate2} {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	fmt.Fprintf(&b, "-A %s -j %s\n-A %s -j %s\n-A %s -j %s\n", ChainForward, ChainCT, ChainForward, ChainIsolate1, ChainForward, ChainBridge)
	b.WriteString("COMMIT\n*nat\n:DOCKER - [0:0]\nCOMMIT\n")
	if err := restore(b.Bytes()); err != nil {
		return errors.Wrap(err, "set up iptables chains")
	}
	if ok, err := f.ipt.ChainExists("filter", ChainUser); err != nil {
		return err
	} else if !ok {
		if err := f.ipt.NewChain("filter", ChainUser); err != nil {
			return err
		}
	}
	if err := f.insertFirst("filter", "FORWARD", "-j", ChainForward); err != nil {
		return err
	}
	// DOCKER-USER is jumped to before DOCKER-FORWARD, so an admin's rule there always wins.
	if err := f.insertFirst("filter", "FORWARD", "-j", ChainUser); err != nil {
		return err
	}
	if err := f.ipt.AppendUnique("nat", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", ChainDocker); err != nil {
		return err
	}
	// Without a userland proxy, loopback destinations must reach DOCKER too (127.0.0.1:port).
	if err := f.ipt.AppendUnique("nat", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", ChainDocker); err != nil {
		return err
	}
	if dropForward {
		return f.ipt.ChangePolicy("filter", "FORWARD", "DROP")
	}
	return nil
}

// insertFirst makes rule the first of chain (moving it if it is elsewhere).
func (f *Firewall) insertFirst(table, chain string, rule ...string) error {
	rules, err := f.ipt.List(table, chain)
	if err != nil {
		return err
	}
	want := "-A " + chain + " " + strings.Join(rule, " ")
	if len(rules) > 1 && rules[1] == want {
		return nil
	}
	if err := f.ipt.DeleteIfExists(table, chain, rule...); err != nil {
		return err
	}
	return f.ipt.Insert(table, chain, 1, rule...)
}

// Network is what per-network rules depend on.
type Network struct {
	Bridge   string
	Subnet   netip.Prefix
	Masq     bool
	ICC      bool
	Internal bool
}

type rule struct {
	table, chain string
	insert       bool
	spec         []string
}

func (n Network) rules() []rule {
	br, sub := n.Bridge, n.Subnet.String()
	if n.Internal {
		icc := "ACCEPT"
		if !n.ICC {
			icc = "DROP"
		}
		return []rule{
			{"filter", ChainIsolate1, false, []string{"!", "-s", sub, "-o", br, "-j", "DROP"}},
			{"filter", ChainIsolate1, false, []string{"!", "-d", sub, "-i", br, "-j", "DROP"}},
			{"filter", ChainForward, false, []string{"-i", br, "-o", br, "-j", icc}},
		}
	}
	var out []rule
	if n.Masq {
		out = append(out, rule{"nat", "POSTROUTING", true, []string{"-s", sub, "!", "-o", br, "-j", "MASQUERADE"}})
	}
	out = append(out,
		rule{"nat", "POSTROUTING", true, []string{"-o", br, "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE"}},
		rule{"filter", ChainDocker, false, []string{"!", "-i", br, "-o", br, "-j", "DROP"}},
		rule{"filter", ChainCT, false, []string{"-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}},
		rule{"filter", ChainBridge, false, []string{"-o", br, "-j", ChainDocker}},
	)
	if n.ICC {
		out = append(out, rule{"filter", ChainForward, false, []string{"-i", br, "-j", "ACCEPT"}})
	} else {
		out = append(out,
			rule{"filter", ChainForward, false, []string{"-i", br, "-o", br, "-j", "DROP"}},
			rule{"filter", ChainForward, false, []string{"-i", br, "!", "-o", br, "-j", "ACCEPT"}})
	}
	return append(out,
		rule{"filter", ChainIsolate1, false, []string{"-i", br, "!", "-o", br, "-j", ChainIsolate2}},
		rule{"filter", ChainIsolate2, true, []string{"-o", br, "-j", "DROP"}},
	)
}

// AddNetwork installs a network's rules (idempotent).
func (f *Firewall) AddNetwork(n Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range n.rules() {
		ok, err := f.ipt.Exists(r.table, r.chain, r.spec...)
		if err != nil {
			return errors.Wrapf(err, "iptables %s %s", r.table, r.chain)
		}
		if ok {
			continue
		}
		if r.insert {
			err = f.ipt.Insert(r.table, r.chain, 1, r.spec...)
		} else {
			err = f.ipt.Append(r.table, r.chain, r.spec...)
		}
		if err != nil {
			return errors.Wrapf(err, "iptables %s %s", r.table, r.chain)
		}
	}
	return nil
}

// RemoveNetwork deletes a network's rules; missing rules are fine.
func (f *Firewall) RemoveNetwork(n Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var first error
	for _, r := range n.rules() {
		if err := f.ipt.DeleteIfExists(r.table, r.chain, r.spec...); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Port is one published port of an endpoint.
type Port struct {
	Proto         string // tcp, udp
	HostIP        netip.Addr
	HostPort      int
	ContainerPort int
}

// Endpoint is an endpoint with published ports.
type Endpoint struct {
	Bridge string
	IP     netip.Addr
	Ports  []Port
}

func (e Endpoint) lines(op string) map[string][]string {
	ip := e.IP.String()
	t := map[string][]string{}
	add := func(table string, line string) { t[table] = append(t[table], line) }
	// Direct routing to the container's address from outside the bridge is refused (raw, before NAT).
	add("raw", fmt.Sprintf("%s PREROUTING -d %s/32 ! -i %s -j DROP", op, ip, e.Bridge))
	for _, p := range e.Ports {
		ins := op
		if op == "-A" {
			ins = "-I"
		}
		add("filter", fmt.Sprintf("%s DOCKER -d %s/32 ! -i %s -o %s -p %s -m %s --dport %d -j ACCEPT", ins, ip, e.Bridge, e.Bridge, p.Proto, p.Proto, p.ContainerPort))
		dst := ""
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			dst = "-d " + p.HostIP.String() + "/32 "
		}
		add("nat", fmt.Sprintf("%s DOCKER %s-p %s -m %s --dport %d -j DNAT --to-destination %s:%d", op, dst, p.Proto, p.Proto, p.HostPort, ip, p.ContainerPort))
		// Hairpin: a container reaching its own published port through the host address.
		add("nat", fmt.Sprintf("%s POSTROUTING -s %s/32 -d %s/32 -p %s -m %s --dport %d -j MASQUERADE", op, ip, ip, p.Proto, p.Proto, p.ContainerPort))
		if p.HostIP.IsLoopback() {
			add("raw", fmt.Sprintf("%s PREROUTING -d %s/32 ! -i lo -p %s -m %s --dport %d -j DROP", op, p.HostIP, p.Proto, p.Proto, p.HostPort))
		}
	}
	return t
}

func batch(t map[string][]string) []byte {
	var b bytes.Buffer
	for _, table := range []string{"raw", "filter", "nat"} {
		if len(t[table]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", table)
		for _, l := range t[table] {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// AddEndpoint installs an endpoint's port rules in one batch.
func (f *Firewall) AddEndpoint(e Endpoint) error {
	if len(e.Ports) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Wrap(restore(batch(e.lines("-A"))), "program published ports")
}

// RemoveEndpoint deletes an endpoint's port rules: one batch, and rule by rule if some were already gone.
func (f *Firewall) RemoveEndpoint(e Endpoint) error {
	if len(e.Ports) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := e.lines("-D")
	if restore(batch(t)) == nil {
		return nil
	}
	var first error
	for table, lines := range t {
		for _, l := range lines {
			f := strings.Fields(l)
			if err := deleteIfExists(table, f[1], f[2:]); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func deleteIfExists(table, chain string, spec []string) error {
	ipt, err := iptables.New()
	if err != nil {
		return err
	}
	return ipt.DeleteIfExists(table, chain, spec...)
}

// Batch returns the iptables-restore input for an endpoint (for tests and diagnostics).
func Batch(e Endpoint, add bool) string {
	op := "-D"
	if add {
		op = "-A"
	}
	return string(batch(e.lines(op)))
}

func restore(input []byte) error {
	cmd := exec.Command("iptables-restore", "--noflush", "--wait")
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.Errorf("iptables-restore: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
