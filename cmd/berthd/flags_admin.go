package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/berthd/berthd/daemon/config"
	"github.com/spf13/pflag"
)

// adminFlagKeys maps the administrator's flags to their daemon.json keys where the names differ.
var adminFlagKeys = map[string]string{
	"log-opt":               "log-opts",
	"registry-mirror":       "registry-mirrors",
	"exec-opt":              "exec-opts",
	"default-ulimit":        "default-ulimits",
	"add-runtime":           "runtimes",
	"http-proxy":            "proxies",
	"https-proxy":           "proxies",
	"no-proxy":              "proxies",
	"storage-opt":           "storage-opts",
	"node-generic-resource": "node-generic-resources",
	"cdi-spec-dir":          "cdi-spec-dirs",
	"default-network-opt":   "default-network-opts",
	"feature":               "features",
	"cluster-store-opt":     "cluster-store-opts",
	"default-address-pool":  "default-address-pools",
	"dns-opt":               "dns-opts",
	"authorization-plugin":  "authorization-plugins",
}

// mergedKeys may be given both as flags and in daemon.json, and merge (dockerd's skipDuplicates): runtimes
// added with --add-runtime join those of the file.
var mergedKeys = map[string]bool{"runtimes": true}

// flagKey is the daemon.json key of a flag.
func flagKey(name string) string {
	if k, ok := flagKeys[name]; ok {
		return k
	}
	if k, ok := adminFlagKeys[name]; ok {
		return k
	}
	return name
}

// refusedFlags are dockerd's flags berthd parses (so a unit file written for dockerd is understood) but
// refuses when given: the option is not implemented. Each one's daemon.json key carries the reason.
// Networking and security flags are defined by their own areas (flags_network.go, flags_security.go).
var refusedFlags = []struct{ name, typ string }{
	{"storage-opt", "list"}, {"max-download-attempts", "int"}, {"allow-nondistributable-artifacts", "list"},
	{"api-cors-header", "string"}, {"cpu-rt-period", "int"}, {"cpu-rt-runtime", "int"},
	{"cri-containerd", "bool"}, {"rootless", "bool"}, {"default-ipc-mode", "string"},
	{"node-generic-resource", "list"}, {"swarm-default-advertise-addr", "string"}, {"cdi-spec-dir", "list"},
	{"network-diagnostic-port", "int"}, {"network-control-plane-mtu", "int"}, {"default-network-opt", "mapmap"},
	{"default-gateway", "ip"}, {"default-gateway-v6", "ip"},
	{"userland-proxy-path", "string"}, {"bip6", "string"}, {"allow-direct-routing", "bool"},
	{"bridge-accept-fwmark", "string"}, {"ip-forward-no-drop", "bool"}, {"firewall-backend", "string"},
	{"feature", "map"}, {"cluster-store", "string"}, {"cluster-advertise", "string"}, {"cluster-store-opt", "map"},
}

// addAdminFlags defines the administrator's options with dockerd's names, types and defaults.
func (o *options) addAdminFlags(fs *pflag.FlagSet) {
	c := o.cfg
	fs.StringVar(&c.LogConfig.Type, "log-driver", c.LogConfig.Type, "Default driver for container logs")
	fs.StringToStringVar(&c.LogConfig.Config, "log-opt", nil, "Default log driver options for containers")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, `Set the logging format ("text"|"json")`)
	fs.BoolVar(&c.RawLogs, "raw-logs", false, "Full timestamps without ANSI coloring")
	fs.StringSliceVar(&c.RegistryMirrors, "registry-mirror", nil, "Preferred Docker registry mirror")
	fs.IntVar(&c.MaxConcurrentDownloads, "max-concurrent-downloads", c.MaxConcurrentDownloads, "Set the max concurrent downloads for each pull")
	fs.IntVar(&c.MaxConcurrentUploads, "max-concurrent-uploads", c.MaxConcurrentUploads, "Set the max concurrent uploads for each push")
	fs.StringSliceVar(&c.ExecOptions, "exec-opt", nil, "Runtime execution options (native.cgroupdriver=cgroupfs|systemd)")
	fs.Var(&ulimitsValue{m: &c.Ulimits}, "default-ulimit", "Default ulimits for containers")
	fs.Var(&c.ShmSize, "default-shm-size", "Default shm size for containers")
	fs.StringVar(&c.CgroupParent, "cgroup-parent", "", "Set parent cgroup for all containers")
	fs.StringVar(&c.CgroupNamespaceMode, "default-cgroupns-mode", c.CgroupNamespaceMode, `Default mode for containers cgroup namespace ("host" | "private")`)
	fs.StringVar(&c.DefaultRuntime, "default-runtime", c.DefaultRuntime, "Default OCI runtime for containers")
	fs.Var(&runtimesValue{m: &c.Runtimes}, "add-runtime", "Register an additional OCI compatible runtime (name=path)")
	fs.BoolVar(&c.Init, "init", false, "Run an init in the container to forward signals and reap processes")
	fs.StringVar(&c.InitPath, "init-path", "", "Path to the docker-init binary")
	fs.IntVar(&c.OOMScoreAdjust, "oom-score-adjust", 0, "Set the oom_score_adj for the daemon")
	fs.StringVar(&c.Proxies.HTTPProxy, "http-proxy", "", "HTTP proxy URL to use for outgoing traffic")
	fs.StringVar(&c.Proxies.HTTPSProxy, "https-proxy", "", "HTTPS proxy URL to use for outgoing traffic")
	fs.StringVar(&c.Proxies.NoProxy, "no-proxy", "", "Comma-separated list of hosts or IP addresses for which the proxy is skipped")
	for _, r := range refusedFlags {
		if fs.Lookup(r.name) != nil {
			continue // implemented by another area
		}
		v := &refusedValue{typ: r.typ}
		f := fs.VarPF(v, r.name, "", "Not supported by berthd (refused when set)")
		if r.typ == "bool" {
			f.NoOptDefVal = "true"
		}
	}
}

// refusedOptions returns the refused flags that were given with a value that changes something.
func (o *options) refusedOptions() error {
	var refused []config.Unsupported
	o.flags.Visit(func(f *pflag.Flag) {
		v, ok := f.Value.(*refusedValue)
		if !ok {
			return
		}
		u, ok := config.UnsupportedOption(flagKey(f.Name))
		if !ok {
			u = config.Unsupported{Key: flagKey(f.Name), Reason: "not supported"}
		}
		if !u.Accepts(v.json()) {
			u.Key = f.Name
			refused = append(refused, u)
		}
	})
	if len(refused) == 0 {
		return nil
	}
	return &config.UnsupportedError{Options: refused, Flags: true}
}

// refusedValue takes any value of a flag berthd refuses, remembering it for the refusal check.
type refusedValue struct {
	typ  string
	vals []string
}

func (v *refusedValue) String() string { return strings.Join(v.vals, ",") }
func (v *refusedValue) Type() string   { return v.typ }
func (v *refusedValue) Set(s string) error {
	v.vals = append(v.vals, s)
	return nil
}

// json renders the value as daemon.json would hold it, so Accepts judges flags and file alike.
func (v *refusedValue) json() json.RawMessage {
	last := ""
	if len(v.vals) > 0 {
		last = v.vals[len(v.vals)-1]
	}
	var b []byte
	switch v.typ {
	case "bool", "int":
		b = []byte(last)
	case "list":
		b, _ = json.Marshal(v.vals)
	case "map", "mapmap":
		b = []byte(`{"` + strings.Join(v.vals, ",") + `":null}`)
	default:
		b, _ = json.Marshal(last)
	}
	return b
}

// ulimitsValue is --default-ulimit name=soft[:hard], repeatable.
type ulimitsValue struct {
	m *map[string]*config.Ulimit
}

func (u *ulimitsValue) Set(s string) error {
	l, err := config.ParseUlimit(s)
	if err != nil {
		return err
	}
	if *u.m == nil {
		*u.m = map[string]*config.Ulimit{}
	}
	(*u.m)[l.Name] = l
	return nil
}

func (u *ulimitsValue) String() string {
	var out []string
	for _, l := range *u.m {
		out = append(out, fmt.Sprintf("%s=%d:%d", l.Name, l.Soft, l.Hard))
	}
	sort.Strings(out)
	return "[" + strings.Join(out, " ") + "]"
}

func (u *ulimitsValue) Type() string { return "ulimit" }

// runtimesValue is --add-runtime name=path, repeatable.
type runtimesValue struct {
	m *map[string]config.Runtime
}

func (r *runtimesValue) Set(s string) error {
	name, path, ok := strings.Cut(s, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("invalid runtime argument: %s", s)
	}
	if *r.m == nil {
		*r.m = map[string]config.Runtime{}
	}
	(*r.m)[name] = config.Runtime{Path: path}
	return nil
}

func (r *runtimesValue) String() string {
	var out []string
	for n, rt := range *r.m {
		out = append(out, n+"="+rt.Path)
	}
	sort.Strings(out)
	return "[" + strings.Join(out, " ") + "]"
}

func (r *runtimesValue) Type() string { return "runtime" }
