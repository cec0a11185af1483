package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/berthd/berthd/api/types/container"
	units "github.com/docker/go-units"
)

// Ulimit is one default ulimit (--default-ulimit), the wire type containers carry, named here so that the
// command line needs no api/types import.
type Ulimit = container.Ulimit

// Defaults of the administrator's options, as dockerd's.
const (
	DefaultLogDriver              = "json-file"
	DefaultShmSize                = 64 << 20
	DefaultMaxConcurrentDownloads = 3
	DefaultMaxConcurrentUploads   = 5
	CgroupDriverCgroupfs          = "cgroupfs"
	CgroupDriverSystemd           = "systemd"
	// StockRuntimeName is the runtime every daemon has: runc through containerd's runc v2 shim.
	StockRuntimeName = "runc"
	// runcShim is the only containerd runtime type berthd drives.
	runcShim = "io.containerd.runc.v2"
)

// LogConfig is the default log driver of new containers and its options.
type LogConfig struct {
	Type   string            `json:"log-driver,omitempty"`
	Config map[string]string `json:"log-opts,omitempty"`
}

// Runtime is an OCI runtime registered under a name (daemon.json "runtimes", --add-runtime).
type Runtime struct {
	Path string   `json:"path,omitempty"`
	Args []string `json:"runtimeArgs,omitempty"`
	Type string   `json:"runtimeType,omitempty"`
	// Options are shim options; refused (berthd passes only the binary and the cgroup driver).
	Options map[string]any `json:"options,omitempty"`
}

// Proxies are the daemon's proxies for registry traffic (dockerd's "proxies" object).
type Proxies struct {
	HTTPProxy  string `json:"http-proxy,omitempty"`
	HTTPSProxy string `json:"https-proxy,omitempty"`
	NoProxy    string `json:"no-proxy,omitempty"`
}

// MemBytes is a size given as a number of bytes or a string with a unit ("64m"), as dockerd accepts.
type MemBytes int64

// UnmarshalJSON accepts 67108864 and "64M".
func (m *MemBytes) UnmarshalJSON(b []byte) error {
	var n int64
	if json.Unmarshal(b, &n) == nil {
		*m = MemBytes(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid size: %s", b)
	}
	return m.Set(s)
}

// Set parses a flag value.
func (m *MemBytes) Set(s string) error {
	n, err := units.RAMInBytes(s)
	if err != nil {
		return fmt.Errorf("invalid size: '%s'", s)
	}
	*m = MemBytes(n)
	return nil
}

func (m *MemBytes) String() string { return units.BytesSize(float64(*m)) }

// Type names the flag value type in --help.
func (m *MemBytes) Type() string { return "bytes" }

// AdminConfig are the administrator's defaults for containers, logging, registries and the runtime.
type AdminConfig struct {
	LogConfig
	LogFormat              string                       `json:"log-format,omitempty"`
	RawLogs                bool                         `json:"raw-logs,omitempty"`
	RegistryMirrors        []string                     `json:"registry-mirrors,omitempty"`
	MaxConcurrentDownloads int                          `json:"max-concurrent-downloads,omitempty"`
	MaxConcurrentUploads   int                          `json:"max-concurrent-uploads,omitempty"`
	ExecOptions            []string                     `json:"exec-opts,omitempty"`
	Ulimits                map[string]*container.Ulimit `json:"default-ulimits,omitempty"`
	ShmSize                MemBytes                     `json:"default-shm-size,omitempty"`
	CgroupParent           string                       `json:"cgroup-parent,omitempty"`
	CgroupNamespaceMode    string                       `json:"default-cgroupns-mode,omitempty"`
	DefaultRuntime         string                       `json:"default-runtime,omitempty"`
	Runtimes               map[string]Runtime           `json:"runtimes,omitempty"`
	Init                   bool                         `json:"init,omitempty"`
	InitPath               string                       `json:"init-path,omitempty"`
	OOMScoreAdjust         int                          `json:"oom-score-adjust,omitempty"`
	Proxies                Proxies                      `json:"proxies,omitempty"`
}

func adminDefaults() AdminConfig {
	return AdminConfig{
		LogConfig:              LogConfig{Type: DefaultLogDriver, Config: map[string]string{}},
		MaxConcurrentDownloads: DefaultMaxConcurrentDownloads,
		MaxConcurrentUploads:   DefaultMaxConcurrentUploads,
		ShmSize:                DefaultShmSize,
		CgroupNamespaceMode:    "host",
		DefaultRuntime:         StockRuntimeName,
		LogFormat:              "text",
	}
}

// CgroupDriver is the cgroup manager containers are created with ("cgroupfs" unless
// exec-opts native.cgroupdriver=systemd).
func (c *AdminConfig) CgroupDriver() string {
	if v, ok := c.execOpts()["native.cgroupdriver"]; ok {
		return v
	}
	return CgroupDriverCgroupfs
}

func (c *AdminConfig) execOpts() map[string]string {
	m := map[string]string{}
	for _, o := range c.ExecOptions {
		k, v, _ := strings.Cut(o, "=")
		m[strings.TrimSpace(strings.ToLower(k))] = strings.TrimSpace(v)
	}
	return m
}

// RuntimeFor returns the registered runtime name (default-runtime when empty).
func (c *AdminConfig) RuntimeFor(name string) (Runtime, bool) {
	if name == "" {
		name = c.DefaultRuntime
	}
	if name == StockRuntimeName || name == "" {
		return Runtime{Path: "runc", Type: runcShim}, true
	}
	r, ok := c.Runtimes[name]
	return r, ok
}

// validateAdmin checks the administrator's options with dockerd's wording where it has one.
func (c *AdminConfig) validateAdmin() error {
	for k, v := range c.execOpts() {
		switch k {
		case "native.cgroupdriver":
			if v != CgroupDriverCgroupfs && v != CgroupDriverSystemd {
				return fmt.Errorf("native.cgroupdriver option %s not supported", v)
			}
		default:
			return fmt.Errorf("berthd does not support the exec-opt %q (only native.cgroupdriver)", k)
		}
	}
	if c.MaxConcurrentDownloads < 0 {
		return fmt.Errorf("invalid max concurrent downloads: %d", c.MaxConcurrentDownloads)
	}
	if c.MaxConcurrentUploads < 0 {
		return fmt.Errorf("invalid max concurrent uploads: %d", c.MaxConcurrentUploads)
	}
	if c.ShmSize < 0 {
		return fmt.Errorf("invalid default-shm-size: must be positive")
	}
	switch c.CgroupNamespaceMode {
	case "", "host", "private":
	default:
		return fmt.Errorf(`default cgroup namespace mode (%v) is invalid; use "host" or "private"`, c.CgroupNamespaceMode)
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("invalid log format: %s", c.LogFormat)
	}
	for _, m := range c.RegistryMirrors {
		if _, err := ValidateMirror(m); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(c.Runtimes))
	for n := range c.Runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := c.Runtimes[n]
		if n == StockRuntimeName {
			return fmt.Errorf("runtime name '%s' is reserved", n)
		}
		if r.Type != "" && r.Type != runcShim {
			return fmt.Errorf("runtime %s: berthd does not support runtimeType %q (only %s)", n, r.Type, runcShim)
		}
		if len(r.Args) > 0 || len(r.Options) > 0 {
			return fmt.Errorf("runtime %s: berthd does not support runtimeArgs or options (only path)", n)
		}
		if r.Path == "" {
			return fmt.Errorf("runtime %s: path is required", n)
		}
	}
	if _, ok := c.RuntimeFor(c.DefaultRuntime); !ok {
		return fmt.Errorf("specified default runtime '%s' does not exist", c.DefaultRuntime)
	}
	for n, u := range c.Ulimits {
		if u == nil || u.Name != n {
			return fmt.Errorf("default-ulimits: entry %q must have Name %q", n, n)
		}
		if u.Soft > u.Hard {
			return fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard)
		}
	}
	if c.OOMScoreAdjust < -1000 || c.OOMScoreAdjust > 1000 {
		return fmt.Errorf("invalid oom-score-adjust %d: must be between -1000 and 1000", c.OOMScoreAdjust)
	}
	return nil
}

// ValidateMirror checks a registry mirror as dockerd does (http or https URL, no path beyond "/", no query)
// and returns it with a trailing slash.
func ValidateMirror(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid mirror: unsupported scheme %q in %q", schemeOf(u), v)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("invalid mirror: path, query, fragment and credentials are not allowed: %s", v)
	}
	return u.Scheme + "://" + u.Host + "/", nil
}

func schemeOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme
}

// ParseUlimit reads a --default-ulimit value: name=soft[:hard].
func ParseUlimit(v string) (*container.Ulimit, error) {
	name, lim, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return nil, fmt.Errorf("invalid ulimit argument: %s", v)
	}
	if !validUlimit[name] {
		return nil, fmt.Errorf("invalid ulimit type: %s", name)
	}
	soft, hard, hasHard := strings.Cut(lim, ":")
	s, err := strconv.ParseInt(soft, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid ulimit soft value %s: %v", soft, err)
	}
	h := s
	if hasHard {
		if h, err = strconv.ParseInt(hard, 10, 64); err != nil {
			return nil, fmt.Errorf("invalid ulimit hard value %s: %v", hard, err)
		}
	}
	if s > h {
		return nil, fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", s, h)
	}
	return &container.Ulimit{Name: name, Soft: s, Hard: h}, nil
}

var validUlimit = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true, "locks": true, "memlock": true,
	"msgqueue": true, "nice": true, "nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true,
}

// NeedsRestart lists the keys whose value differs between cur and next but that SIGHUP does not apply,
// so a reload can say so instead of leaving the admin to believe they took effect.
func NeedsRestart(cur, next *Config) []string {
	a, b := asMap(cur), asMap(next)
	reloadable := map[string]bool{}
	for _, k := range Reloadable {
		reloadable[k] = true
	}
	var out []string
	for k := range KnownKeys() {
		if !reloadable[k] && string(a[k]) != string(b[k]) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func asMap(c *Config) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	b, err := json.Marshal(c)
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}
