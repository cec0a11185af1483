// Package getter owns the leaf interfaces through which other subsystems (volumes now; networks and log
// drivers later) find plugins, without importing the plugin store or manager. Standard library only.
package getter

import "context"

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
// Managed plugins count references (one per volume on them, say), so that a plugin in use is not
// disabled or removed; legacy plugins are not counted.
//
// Lookup, Acquire and Release return errdefs NotFound (`plugin "x" not found`) when neither kind exists,
// Conflict when a managed plugin exists but is disabled (Acquire never counts a reference on a plugin that
// is disabled or being disabled). They must fail fast for a name with no socket or spec file and must
// never hold a global lock while they talk to a plugin.
type PluginGetter interface {
	// Lookup resolves name without changing its reference count.
	Lookup(ctx context.Context, name, capability string) (CompatPlugin, error)
	// Acquire resolves name and takes one reference on it, given back by Release.
	Acquire(ctx context.Context, name, capability string) (CompatPlugin, error)
	// Release gives back one reference taken by Acquire (never below zero).
	Release(ctx context.Context, name, capability string) error
	// GetAllByCap lists the plugins implementing capability that answer; it never fails for one dead
	// plugin.
	GetAllByCap(ctx context.Context, capability string) ([]CompatPlugin, error)
}
