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
// policy to DROP (only when the daemon itself turned ip_forward on, as dockerd). It costs one
// iptables-save and one iptables-restore.
func (f *Firewall) Setup(dropForward bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, err := save()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("*filter\n")
	for _, c := range []string{ChainForward, ChainCT, ChainBridge, ChainDocker, ChainIsolate1, ChainIsolate2} {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	if !cur.chains["filter"][ChainUser] {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ChainUser)
	}
	fmt.Fprintf(&b, "-A %s -j %s\n-A %s -j %s\n-A %s -j %s\n", ChainForward, ChainCT, ChainForward, ChainIsolate1, ChainForward, ChainBridge)
	// DOCKER-USER first, then DOCKER-FORWARD, at the top of FORWARD: an admin's rule always wins.
	fwd := cur.rules["filter"]["FORWARD"]
	want := []string{"-A FORWARD -j " + ChainUser, "-A FORWARD -j " + ChainForward}
	if len(fwd) < 2 || fwd[0] != want[0] || fwd[1] != want[1] {
		for _, r := range fwd {
			if r == want[0] || r == want[1] {
				b.WriteString("-D" + strings.TrimPrefix(r, "-A") + "\n")
			}
		}
		fmt.Fprintf(&b, "-I FORWARD 1 -j %s\n-I FORWARD 1 -j %s\n", ChainForward, ChainUser)
	}
	b.WriteString("COMMIT\n*nat\n:DOCKER - [0:0]\n")
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		// Without a userland proxy, loopback destinations must reach DOCKER too (127.0.0.1:port).
		r := "-A " + chain + " -m addrtype --dst-type LOCAL -j " + ChainDocker
		if !cur.has("nat", chain, r) {
			b.WriteString(r + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	if err := restore(b.Bytes()); err != nil {
		return errors.Wrap(err, "set up iptables chains")
	}
	if dropForward {
		return f.ipt.ChangePolicy("filter", "FORWARD", "DROP")
	}
	return nil
}

// ruleset is iptables-save's output: chains and rules ("-A CHAIN ...") by table.
type ruleset struct {
	chains map[string]map[string]bool
	rules  map[string]map[string][]string
	set    map[string]bool // "table|rule"
}

func (r ruleset) has(table, chain, rule string) bool { return r.set[table+"|"+rule] }

func save() (ruleset, error) {
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		return ruleset{}, errors.Wrap(err, "iptables-save")
	}
	rs := ruleset{chains: map[string]map[string]bool{}, rules: map[string]map[string][]string{}, set: map[string]bool{}}
	table := ""
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
			rs.chains[table] = map[string]bool{}
			rs.rules[table] = map[string][]string{}
		case strings.HasPrefix(l, ":") && table != "":
			name, _, _ := strings.Cut(l[1:], " ")
			rs.chains[table][name] = true
		case strings.HasPrefix(l, "-A ") && table != "":
			f := strings.Fields(l)
			rs.rules[table][f[1]] = append(rs.rules[table][f[1]], l)
			rs.set[table+"|"+l] = true
		}
	}
	return rs, nil
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

// AddNetwork installs a network's missing rules: one iptables-save, one iptables-restore.
func (f *Firewall) AddNetwork(n Network) error {
	return errors.Wrapf(f.sync(n.rules(), true), "program network %s", n.Bridge)
}

// RemoveNetwork deletes a network's rules that exist: one iptables-save, one iptables-restore.
func (f *Firewall) RemoveNetwork(n Network) error {
	return errors.Wrapf(f.sync(n.rules(), false), "remove rules of network %s", n.Bridge)
}

// sync adds the rules that are missing (add) or deletes those present (!add), in one batch; rules
// already as wanted are left alone, so neither direction doubles or fails on a rule.
func (f *Firewall) sync(rules []rule, add bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, err := save()
	if err != nil {
		return err
	}
	t := map[string][]string{}
	for _, r := range rules {
		spec := strings.Join(r.spec, " ")
		present := cur.has(r.table, r.chain, "-A "+r.chain+" "+spec)
		switch {
		case add && !present && r.insert:
			t[r.table] = append(t[r.table], "-I "+r.chain+" 1 "+spec)
		case add && !present:
			t[r.table] = append(t[r.table], "-A "+r.chain+" "+spec)
		case !add && present:
			t[r.table] = append(t[r.table], "-D "+r.chain+" "+spec)
		}
	}
	if len(t) == 0 {
		return nil
	}
	return restore(batch(t))
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
