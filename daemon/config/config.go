// Package config owns berthd's configuration: the Config struct with daemon.json keys, its defaults, the
// merge of a daemon.json file over flags with dockerd's rules (unknown keys and keys set both ways are
// errors), the table of dockerd options berthd refuses by name (options.go), validation, and the set of
// keys SIGHUP may reload. It knows nothing of flag libraries: the command line tells it which keys were
// set explicitly. Imports: the standard library, api/types and docker/go-units (sizes).
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"unicode/utf16"
)

// Defaults for a rootful Linux daemon. Socket path and plugin dirs match dockerd's so the stock CLI and
// existing plugins work unchanged; data and exec roots are berthd's own so it can run beside dockerd.
const (
	DefaultHost                      = "unix:///var/run/docker.sock"
	DefaultDataRoot                  = "/var/lib/berth"
	DefaultExecRoot                  = "/var/run/berth"
	DefaultPidfile                   = "/var/run/berth.pid"
	DefaultConfigFile                = "/etc/berth/daemon.json"
	DefaultContainerdNamespace       = "berth"
	DefaultContainerdPluginNamespace = "plugins.berth"
	DefaultShutdownTimeout           = 15
	DefaultPluginsSocketDir          = "/run/docker/plugins"
	DefaultGroup                     = "docker"
	// SystemContainerdAddress is used when --containerd is not given and a containerd answers there.
	SystemContainerdAddress = "/run/containerd/containerd.sock"
)

// DefaultPluginsSpecDirs are dockerd's legacy plugin spec directories.
var DefaultPluginsSpecDirs = []string{"/etc/docker/plugins", "/usr/lib/docker/plugins"}

// PluginTimeouts bound calls to plugins, in seconds. Zero means the built-in default.
type PluginTimeouts struct {
	// Create bounds Create and Mount (slow for network filesystems), Default every other call.
	Create  int `json:"create,omitempty"`
	Default int `json:"default,omitempty"`
}

// Config is the daemon configuration. JSON keys are daemon.json's (dockerd's names where dockerd has them).
type Config struct {
	Hosts                     []string       `json:"hosts,omitempty"`
	Root                      string         `json:"data-root,omitempty"`
	ExecRoot                  string         `json:"exec-root,omitempty"`
	Pidfile                   string         `json:"pidfile,omitempty"`
	ContainerdAddr            string         `json:"containerd,omitempty"`
	ContainerdNamespace       string         `json:"containerd-namespace,omitempty"`
	ContainerdPluginNamespace string         `json:"containerd-plugin-namespace,omitempty"`
	Debug                     bool           `json:"debug,omitempty"`
	LogLevel                  string         `json:"log-level,omitempty"`
	LiveRestore               bool           `json:"live-restore,omitempty"`
	ShutdownTimeout           int            `json:"shutdown-timeout,omitempty"`
	Group                     string         `json:"group,omitempty"`
	TLS                       *bool          `json:"tls,omitempty"`
	TLSVerify                 *bool          `json:"tlsverify,omitempty"`
	TLSCACert                 string         `json:"tlscacert,omitempty"`
	TLSCert                   string         `json:"tlscert,omitempty"`
	TLSKey                    string         `json:"tlskey,omitempty"`
	PluginsSocketDir          string         `json:"plugins-socket-dir,omitempty"`
	PluginsSpecDirs           []string       `json:"plugins-spec-dirs,omitempty"`
	PluginTimeouts            PluginTimeouts `json:"plugin-timeouts,omitempty"`
	StorageDriver             string         `json:"storage-driver,omitempty"`
	InsecureRegistries        []string       `json:"insecure-registries,omitempty"`
	Labels                    []string       `json:"labels,omitempty"`
	Experimental              bool           `json:"experimental,omitempty"`
	MetricsAddress            string         `json:"metrics-addr,omitempty"`
	Builder                   BuilderConfig  `json:"builder,omitempty"`
	Features                  FeaturesConfig `json:"features,omitempty"`
	SecurityConfig

	AdminConfig

	NetworkConfig
}

// New returns the defaults.
func New() *Config {
	return &Config{
		Root:                      DefaultDataRoot,
		ExecRoot:                  DefaultExecRoot,
		Pidfile:                   DefaultPidfile,
		ContainerdNamespace:       DefaultContainerdNamespace,
		ContainerdPluginNamespace: DefaultContainerdPluginNamespace,
		LogLevel:                  "info",
		ShutdownTimeout:           DefaultShutdownTimeout,
		Group:                     DefaultGroup,
		PluginsSocketDir:          DefaultPluginsSocketDir,
		PluginsSpecDirs:           append([]string(nil), DefaultPluginsSpecDirs...),
		AdminConfig:               adminDefaults(),
		NetworkConfig:             defaultNetworkConfig(),
	}
}

// KnownKeys lists every daemon.json key Config understands.
func KnownKeys() map[string]bool {
	keys := map[string]bool{}
	addKeys(keys, reflect.TypeOf(Config{}))
	return keys
}

// addKeys collects the JSON keys of t's fields, those of embedded structs included (their fields are
// top-level keys in daemon.json, as encoding/json reads them).
func addKeys(keys map[string]bool, t reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			addKeys(keys, f.Type)
			continue
		}
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
}

// FileError is a configuration file problem; its message names the file.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("unable to configure the daemon with file %s: %v", e.Path, e.Err)
}
func (e *FileError) Unwrap() error { return e.Err }

// LoadFile merges the JSON file at path into cfg. explicit maps each key set on the command line to its
// value as text; a key set both ways is an error, as is a key no option has, and a dockerd key berthd
// does not support set to anything but a value that changes nothing. A missing file is an error only when
// mustExist.
func LoadFile(cfg *Config, path string, mustExist bool, explicit map[string]string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) && !mustExist {
			return nil
		}
		return &FileError{Path: path, Err: err}
	}
	raw = decodeBOM(raw)
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return &FileError{Path: path, Err: err}
	}
	known := KnownKeys()
	var unknown, conflicts []string
	var refused []Unsupported
	for k, v := range fields {
		if u, ok := UnsupportedOption(k); ok {
			if !u.Accepts(v) {
				refused = append(refused, u)
			}
			delete(fields, k)
			continue
		}
		switch {
		case !known[k]:
			unknown = append(unknown, k)
		default:
			if fv, ok := explicit[k]; ok {
				conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %s)", k, fv, compact(v)))
			}
		}
	}
	sort.Strings(unknown)
	sort.Strings(conflicts)
	if len(unknown) > 0 {
		return &FileError{Path: path, Err: fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))}
	}
	if len(conflicts) > 0 {
		return &FileError{Path: path, Err: fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", "))}
	}
	if len(refused) > 0 {
		return &FileError{Path: path, Err: &UnsupportedError{Options: refused}}
	}
	// Decoding into cfg overwrites only the keys the file has; none of them was set by a flag (checked
	// above), so flags and file never fight over a field.
	clean, _ := json.Marshal(fields)
	dec := json.NewDecoder(bytes.NewReader(clean))
	if err := dec.Decode(cfg); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

// decodeBOM accepts UTF-8 with or without BOM and UTF-16LE with BOM, as dockerd does.
func decodeBOM(b []byte) []byte {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}) && len(b)%2 == 0:
		u := make([]uint16, 0, len(b)/2-1)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
		}
		return []byte(string(utf16.Decode(u)))
	}
	return b
}

var logLevels = map[string]bool{"trace": true, "debug": true, "info": true, "warn": true, "error": true, "fatal": true, "panic": true}

// Validate rejects inconsistent settings with dockerd-like messages.
func (c *Config) Validate() error {
	if !logLevels[c.LogLevel] {
		return fmt.Errorf("invalid logging level: %s", c.LogLevel)
	}
	if err := c.validateNetwork(); err != nil {
		return err
	}
	if c.ShutdownTimeout < -1 {
		return fmt.Errorf("invalid shutdown-timeout: %d (must be -1 or more)", c.ShutdownTimeout)
	}
	if c.Root == "" || c.ExecRoot == "" {
		return fmt.Errorf("data-root and exec-root must not be empty")
	}
	for _, h := range c.Hosts {
		proto, _, ok := strings.Cut(h, "://")
		if !ok || (proto != "unix" && proto != "tcp" && proto != "fd") {
			return fmt.Errorf("invalid daemon host %q: must be unix://, tcp:// or fd://", h)
		}
	}
	for _, l := range c.Labels {
		if !strings.Contains(l, "=") {
			return fmt.Errorf("bad attribute format: %s", l)
		}
	}
	if c.TLSVerify != nil && *c.TLSVerify && c.TLS != nil && !*c.TLS {
		return fmt.Errorf("conflicting options: --tlsverify requires --tls")
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	if err := c.Features.validate(); err != nil {
		return err
	}
	if err := c.Builder.validate(); err != nil {
		return err
	}
	return c.validateAdmin()
}

// TLSEnabled reports whether listeners use TLS: --tlsverify implies it, as in dockerd.
func (c *Config) TLSEnabled() bool {
	return (c.TLS != nil && *c.TLS) || (c.TLSVerify != nil && *c.TLSVerify)
}

// Reloadable lists the keys SIGHUP applies; others need a restart.
var Reloadable = []string{"debug", "log-level", "live-restore", "shutdown-timeout", "labels",
	"registry-mirrors", "insecure-registries", "max-concurrent-downloads", "max-concurrent-uploads",
	"authorization-plugins"}

// ApplyReload copies the reloadable settings of next into c and returns them all as the attributes of the
// `daemon reload` event (dockerd reports the whole reloadable set, not only what changed).
func (c *Config) ApplyReload(next *Config) map[string]string {
	c.Debug, c.LogLevel, c.LiveRestore = next.Debug, next.LogLevel, next.LiveRestore
	c.ShutdownTimeout, c.Labels = next.ShutdownTimeout, next.Labels
	c.AuthorizationPlugins = next.AuthorizationPlugins
	c.RegistryMirrors, c.InsecureRegistries = next.RegistryMirrors, next.InsecureRegistries
	c.MaxConcurrentDownloads, c.MaxConcurrentUploads = next.MaxConcurrentDownloads, next.MaxConcurrentUploads
	return map[string]string{
		"registry-mirrors":         "[" + strings.Join(c.RegistryMirrors, " ") + "]",
		"insecure-registries":      "[" + strings.Join(c.InsecureRegistries, " ") + "]",
		"max-concurrent-downloads": fmt.Sprint(c.MaxConcurrentDownloads),
		"max-concurrent-uploads":   fmt.Sprint(c.MaxConcurrentUploads),
		"debug":                    fmt.Sprint(c.Debug),
		"log-level":                c.LogLevel,
		"live-restore":             fmt.Sprint(c.LiveRestore),
		"shutdown-timeout":         fmt.Sprint(c.ShutdownTimeout),
		"labels":                   "[" + strings.Join(c.Labels, " ") + "]",
	}
}
