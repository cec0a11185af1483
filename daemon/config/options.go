package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Unsupported is a dockerd option berthd does not act on. Setting it is refused at start-up and by
// --validate, naming the option, rather than accepted and silently ignored. Harmless lists the values
// (compact JSON, e.g. `false`, `""`, `[]`) that ask for exactly what berthd does anyway, so a daemon.json
// written for dockerd that spells out a default still loads.
type Unsupported struct {
	Key      string
	Reason   string
	Harmless []string
}

// unsupported are dockerd's daemon.json keys (and, through flagKeys in cmd/berthd, its flags) that berthd
// refuses. A key that later gets a Config field is implemented from then on: KnownKeys wins, so wiring an
// option needs no edit here (TestEveryDockerdKeyHasAStatus keeps the two lists honest).
var unsupported = []Unsupported{
	{Key: "storage-opts", Reason: "storage driver options are containerd snapshotter settings (configure them in containerd)", Harmless: []string{"[]"}},
	{Key: "max-download-attempts", Reason: "pulls are retried by containerd's resolver, not a per-layer attempt count", Harmless: []string{"5"}},
	{Key: "allow-nondistributable-artifacts", Reason: "foreign layers are always pushed (dockerd deprecated this key)", Harmless: []string{"[]"}},
	{Key: "api-cors-header", Reason: "CORS headers on the Engine API (deprecated in dockerd)", Harmless: []string{`""`}},
	{Key: "cpu-rt-period", Reason: "real-time CPU scheduling for the containers' parent cgroup", Harmless: []string{"0"}},
	{Key: "cpu-rt-runtime", Reason: "real-time CPU scheduling for the containers' parent cgroup", Harmless: []string{"0"}},
	{Key: "cri-containerd", Reason: "the supervised containerd never serves CRI (use a system containerd for Kubernetes)", Harmless: []string{"false"}},
	{Key: "rootless", Reason: "rootless mode (berthd runs as root)", Harmless: []string{"false"}},
	{Key: "default-ipc-mode", Reason: "containers get a private IPC namespace by default; only \"private\" is supported", Harmless: []string{`"private"`}},
	{Key: "node-generic-resources", Reason: "swarm mode", Harmless: []string{"[]"}},
	{Key: "swarm-default-advertise-addr", Reason: "swarm mode", Harmless: []string{`""`}},
	{Key: "swarm-raft-heartbeat-tick", Reason: "swarm mode", Harmless: []string{"0"}},
	{Key: "swarm-raft-election-tick", Reason: "swarm mode", Harmless: []string{"0"}},
	{Key: "cluster-store", Reason: "legacy overlay networking (removed from dockerd)", Harmless: []string{`""`}},
	{Key: "cluster-store-opts", Reason: "legacy overlay networking (removed from dockerd)", Harmless: []string{"{}"}},
	{Key: "cluster-advertise", Reason: "legacy overlay networking (removed from dockerd)", Harmless: []string{`""`}},
	{Key: "cdi-spec-dirs", Reason: "CDI devices", Harmless: []string{"[]"}},
	{Key: "network-diagnostic-port", Reason: "libnetwork's diagnostic server", Harmless: []string{"0"}},
	{Key: "network-control-plane-mtu", Reason: "swarm control-plane networking", Harmless: []string{"1500"}},
	{Key: "default-network-opts", Reason: "default driver options for new networks", Harmless: []string{"{}"}},
	{Key: "default-gateway", Reason: "a fixed default gateway for containers", Harmless: []string{`""`}},
	{Key: "default-gateway-v6", Reason: "a fixed default gateway for containers", Harmless: []string{`""`}},
	{Key: "host-gateway-ips", Reason: "the address of the special host-gateway name", Harmless: []string{"[]"}},
	{Key: "userland-proxy-path", Reason: "published ports are forwarded by the kernel, not a proxy binary", Harmless: []string{`""`}},
	{Key: "bip6", Reason: "IPv6 on the default bridge"},
	{Key: "allow-direct-routing", Reason: "direct routing to container addresses", Harmless: []string{"false"}},
	{Key: "bridge-accept-fwmark", Reason: "firewall marks on the default bridge", Harmless: []string{`""`}},
	{Key: "ip-forward-no-drop", Reason: "the FORWARD policy is never changed", Harmless: []string{"false"}},
	{Key: "firewall-backend", Reason: "berthd programs iptables only", Harmless: []string{`""`, `"iptables"`}},
}

// pendingUnsupported are keys other areas are implementing (networking: daemon/config/network.go;
// security: daemon/config/security.go). Until their Config fields exist, setting one is refused.
var pendingUnsupported = []Unsupported{
	// Networking.
	{Key: "bridge", Reason: "networking option not implemented yet"},
	{Key: "bip", Reason: "networking option not implemented yet"},
	{Key: "fixed-cidr", Reason: "networking option not implemented yet"},
	{Key: "fixed-cidr-v6", Reason: "networking option not implemented yet"},
	{Key: "mtu", Reason: "networking option not implemented yet"},
	{Key: "default-address-pools", Reason: "networking option not implemented yet"},
	{Key: "ip", Reason: "networking option not implemented yet"},
	{Key: "iptables", Reason: "networking option not implemented yet"},
	{Key: "ip6tables", Reason: "networking option not implemented yet"},
	{Key: "ip-forward", Reason: "networking option not implemented yet"},
	{Key: "ip-masq", Reason: "networking option not implemented yet"},
	{Key: "icc", Reason: "networking option not implemented yet"},
	{Key: "userland-proxy", Reason: "networking option not implemented yet"},
	{Key: "ipv6", Reason: "networking option not implemented yet"},
	{Key: "dns", Reason: "networking option not implemented yet"},
	{Key: "dns-opts", Reason: "networking option not implemented yet"},
	{Key: "dns-search", Reason: "networking option not implemented yet"},
	// Security.
	{Key: "seccomp-profile", Reason: "security option not implemented yet"},
	{Key: "no-new-privileges", Reason: "security option not implemented yet"},
	{Key: "selinux-enabled", Reason: "security option not implemented yet", Harmless: []string{"false"}},
	{Key: "userns-remap", Reason: "security option not implemented yet", Harmless: []string{`""`}},
	{Key: "authorization-plugins", Reason: "security option not implemented yet", Harmless: []string{"[]"}},
}

// UnsupportedOption returns the refusal for key, if berthd refuses it (implemented keys never are).
func UnsupportedOption(key string) (Unsupported, bool) {
	if KnownKeys()[key] {
		return Unsupported{}, false
	}
	for _, l := range [][]Unsupported{unsupported, pendingUnsupported} {
		for _, u := range l {
			if u.Key == key {
				return u, true
			}
		}
	}
	return Unsupported{}, false
}

// Accepts reports whether value (compact JSON) is one of the values that change nothing.
func (u Unsupported) Accepts(value json.RawMessage) bool {
	var b bytes.Buffer
	if json.Compact(&b, value) != nil {
		return false
	}
	v := b.String()
	for _, h := range u.Harmless {
		if v == h || (h == `""` && v == "null") {
			return true
		}
	}
	return false
}

func (u Unsupported) String() string {
	return fmt.Sprintf("%s (%s)", u.Key, u.Reason)
}

// UnsupportedError lists the options set that berthd does not support.
type UnsupportedError struct {
	Options []Unsupported
	// Flags is true when they came from the command line (named --key).
	Flags bool
}

func (e *UnsupportedError) Error() string {
	s := make([]string, len(e.Options))
	for i, u := range e.Options {
		if e.Flags {
			s[i] = "--" + u.String()
		} else {
			s[i] = u.String()
		}
	}
	sort.Strings(s)
	what := "directives"
	if e.Flags {
		what = "flags"
	}
	return fmt.Sprintf("berthd does not support the following %s: %s", what, strings.Join(s, "; "))
}

// DockerdKeys is every daemon.json key of dockerd (v20.10 to v28, Linux), for the table test and for
// anyone asking which keys exist.
var DockerdKeys = []string{
	"allow-direct-routing", "allow-nondistributable-artifacts", "api-cors-header", "authorization-plugins",
	"bip", "bip6", "bridge", "bridge-accept-fwmark", "builder", "cdi-spec-dirs", "cgroup-parent",
	"cluster-advertise", "cluster-store", "cluster-store-opts", "containerd", "containerd-namespace",
	"containerd-plugin-namespace", "cpu-rt-period", "cpu-rt-runtime", "cri-containerd", "data-root", "debug",
	"default-address-pools", "default-cgroupns-mode", "default-gateway", "default-gateway-v6",
	"default-ipc-mode", "default-network-opts", "default-runtime", "default-shm-size", "default-ulimits", "dns",
	"dns-opts", "dns-search", "exec-opts", "exec-root", "experimental", "features", "firewall-backend",
	"fixed-cidr", "fixed-cidr-v6", "group", "host-gateway-ip", "host-gateway-ips", "hosts", "icc", "init",
	"init-path", "insecure-registries", "ip", "ip-forward", "ip-forward-no-drop", "ip-masq", "ip6tables",
	"iptables", "ipv6", "labels", "live-restore", "log-driver", "log-format", "log-level", "log-opts",
	"max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "metrics-addr", "mtu",
	"network-control-plane-mtu", "network-diagnostic-port", "no-new-privileges", "node-generic-resources",
	"oom-score-adjust", "pidfile", "proxies", "raw-logs", "registry-mirrors", "rootless", "runtimes",
	"seccomp-profile", "selinux-enabled", "shutdown-timeout", "storage-driver", "storage-opts",
	"swarm-default-advertise-addr", "swarm-raft-election-tick", "swarm-raft-heartbeat-tick", "tls", "tlscacert",
	"tlscert", "tlskey", "tlsverify", "userland-proxy", "userland-proxy-path", "userns-remap",
}
