// Package getter owns the leaf interfaces through which other subsystems (volumes now; networks and log
// drivers later) find plugins, without importing the plugin store or manager. Standard library only.
package getter

import "context"

// Modes of Get: how the call changes a managed plugin's reference count. Legacy plugins are not counted.
const (
	Lookup  = 0
	Acquire = 1
	Release = -1
)

// Capabilities as lookups name them.
const (
	VolumeDriver = "VolumeDriver"
)

// Client calls a plugin's HTTP API: POST /<method> with args as JSON, reply decoded into ret.
// Implementations bound every call with a deadline and classify failures with containerd/errdefs:
// Unavailable when the plugin cannot be reached (so callers may re-resolve it), NotFound for a 404.
type Client interface {
	CallContext(ctx context.Context, method string, args, ret any) error
}

// CompatPlugin is a plugin of either kind, as a consumer sees it.
type CompatPlugin interface {
	Name() string
	// ScopedPath maps a path the plugin reports into the host's view (managed plugins live in a rootfs).
	ScopedPath(path string) string
	IsV1() bool
	Client() Client
}

// PluginGetter resolves plugins by name and capability: managed plugins first, legacy ones as fallback.
//
// Get returns errdefs NotFound (`plugin "x" not found`) when neither exists, Conflict when a managed
// plugin exists but is disabled. It must fail fast for a name with no socket or spec file and must never
// hold a global lock while it talks to a plugin.
type PluginGetter interface {
	Get(ctx context.Context, name, capability string, mode int) (CompatPlugin, error)
	GetAllByCap(ctx context.Context, capability string) ([]CompatPlugin, error)
}
