// Package v1 owns legacy (v1) plugins: discovery of sockets, .spec and .json files in configured
// directories, the /Plugin.Activate handshake, and the JSON-over-HTTP client every plugin call goes
// through (deadlines, bounded connect retry, size-capped strict reply decoding, error classification).
// Managed (v2) plugins use the same client through NewSocketPlugin: there is one implementation of the
// plugin protocol.
//
// Beyond dockerd, a plugin that restarts is re-discovered and re-activated by the next call (hooks let
// consumers such as the volume adapter re-mount), and a plugin that keeps failing (or hangs in Activate)
// is marked unavailable for a short cool-down while a background probe waits for it, so callers fail fast
// instead of stalling; a new socket file in its place ends that at once. Activation is held to the same
// deadline as the calls.
//
// It imports the standard library, errdefs/log/pkg-errors and plugin/getter (whose interfaces Plugin
// implements); never volume/..., plugin/store or daemon/...: consumers reach plugins through plugin/getter.
package v1

import (
	"time"
)

// Defaults as dockerd's (volume calls) or as design.md §6 asks (fail fast).
const (
	DefaultSocketDir       = "/run/docker/plugins"
	DefaultCallTimeout     = time.Minute
	DefaultLongCallTimeout = 2 * time.Minute
	DefaultActivateTimeout = 30 * time.Second
	DefaultMaxReplySize    = 16 << 20
)

// DefaultSpecDirs are dockerd's (rootful) spec directories, in lookup order.
var DefaultSpecDirs = []string{"/etc/docker/plugins", "/usr/lib/docker/plugins"}

// Timeouts bound plugin calls. Every call gets a deadline: Methods[method] if set, else Default.
type Timeouts struct {
	// Default applies to methods not named in Methods (dockerd: 1 min for volume calls).
	Default time.Duration
	// Activate bounds the /Plugin.Activate handshake (dockerd has none; a hung plugin would hang lookups).
	// Zero means DefaultActivateTimeout, or Default when that is shorter: activation happens inside a
	// call, and must not outlast the deadline every other call is held to.
	Activate time.Duration
	// Methods maps a method name without the leading slash ("VolumeDriver.Create") to its timeout.
	Methods map[string]time.Duration
}

// DefaultTimeouts are dockerd's volume-call timeouts: 2 min for Create and Mount, 1 min for the rest.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Default: DefaultCallTimeout,
		Methods: map[string]time.Duration{
			"VolumeDriver.Create": DefaultLongCallTimeout,
			"VolumeDriver.Mount":  DefaultLongCallTimeout,
		},
	}
}

// UniformTimeouts gives every call, the activation included, the deadline d (a managed plugin enabled
// with --timeout); d <= 0 gives DefaultTimeouts.
func UniformTimeouts(d time.Duration) Timeouts {
	if d <= 0 {
		return DefaultTimeouts()
	}
	// An empty (not nil) Methods map: nil would be filled with the per-method defaults.
	return Timeouts{Default: d, Activate: d, Methods: map[string]time.Duration{}}
}

// For returns the timeout of one method.
func (t Timeouts) For(method string) time.Duration {
	if d, ok := t.Methods[method]; ok && d > 0 {
		return d
	}
	if t.Default > 0 {
		return t.Default
	}
	return DefaultCallTimeout
}

// Config configures the legacy plugin registry. The zero value of every field means its default, except
// the directories: an empty SocketDir or SpecDirs means "no such directory" so tests and rootless daemons
// never look at the host's; use DefaultConfig for dockerd's paths.
type Config struct {
	// SocketDir holds NAME.sock or NAME/NAME.sock unix sockets (--plugins-socket-dir).
	SocketDir string
	// SpecDirs hold NAME.spec / NAME.json (and NAME/NAME.spec, NAME/NAME.json), searched in order.
	SpecDirs []string
	Timeouts Timeouts
	// ConnectAttempts is how many times a call is tried when the plugin refuses the connection (default 3).
	ConnectAttempts int
	// ConnectBackoff is the first wait between connect attempts, doubled each time (default 100 ms).
	ConnectBackoff time.Duration
	// FailureThreshold is how many calls in a row may fail to reach a plugin before it is marked
	// unavailable (default 3).
	FailureThreshold int
	// Cooldown is how often the background probe tries a plugin marked unavailable (default 1 s). Calls
	// fail fast until the probe activates it again.
	Cooldown time.Duration
	// MaxReplySize caps a reply body (default 16 MiB).
	MaxReplySize int64
}

// DefaultConfig is dockerd's rootful layout with berthd's defaults.
func DefaultConfig() Config {
	return Config{
		SocketDir: DefaultSocketDir,
		SpecDirs:  append([]string(nil), DefaultSpecDirs...),
		Timeouts:  DefaultTimeouts(),
	}
}

func (c Config) withDefaults() Config {
	if c.Timeouts.Default <= 0 {
		c.Timeouts.Default = DefaultCallTimeout
	}
	if c.Timeouts.Activate <= 0 {
		c.Timeouts.Activate = min(DefaultActivateTimeout, c.Timeouts.Default)
	}
	if c.Timeouts.Methods == nil {
		c.Timeouts.Methods = DefaultTimeouts().Methods
	}
	if c.ConnectAttempts <= 0 {
		c.ConnectAttempts = 3
	}
	if c.ConnectBackoff <= 0 {
		c.ConnectBackoff = 100 * time.Millisecond
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 3
	}
	if c.Cooldown <= 0 {
		c.Cooldown = time.Second
	}
	if c.MaxReplySize <= 0 {
		c.MaxReplySize = DefaultMaxReplySize
	}
	return c
}
