package plugin

import (
	"context"
	"io"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/plugin"
)

// Backend is what the plugin router needs from the plugin manager. Errors carry their class
// (containerd/errdefs); the server maps them to status codes. Names may be a plugin ID, an ID prefix or
// a reference (":latest" implied).
type Backend interface {
	// List returns managed plugins matching f (capability, enabled; other keys are invalid).
	List(ctx context.Context, f filters.Args) ([]plugin.Plugin, error)
	Inspect(ctx context.Context, name string) (*plugin.Plugin, error)
	// Create makes a disabled plugin from an uncompressed tar of config.json and rootfs/.
	Create(ctx context.Context, name string, tarball io.Reader) error
	// Enable starts the plugin; timeout (seconds) is its client timeout.
	Enable(ctx context.Context, name string, timeout int) error
	Disable(ctx context.Context, name string, force bool) error
	Remove(ctx context.Context, name string, force bool) error
	// Set applies "KEY=VALUE" settings to a disabled plugin.
	Set(ctx context.Context, name string, args []string) error
	Privileges(ctx context.Context, remote string) ([]plugin.Privilege, error)
	// Pull, Push and Upgrade may answer NotImplemented.
	Pull(ctx context.Context, remote, name string) error
	Push(ctx context.Context, name string) error
	Upgrade(ctx context.Context, name, remote string) error
}
