package plugin

import (
	"context"
	"io"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/image"
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
	// Privileges are what the plugin at remote asks for.
	Privileges(ctx context.Context, remote string, auth *image.AuthConfig) ([]plugin.Privilege, error)
	// PullName is the local name Pull gives the plugin (name, or remote's name and tag when empty).
	PullName(remote, name string) (string, error)
	// Pull installs remote as a disabled plugin called name, if privileges are what it asks for.
	Pull(ctx context.Context, remote, name string, privileges []plugin.Privilege, auth *image.AuthConfig, progress func(image.JSONMessage)) error
	// Push uploads the plugin to the registry its name points at; progress ends with the aux result.
	Push(ctx context.Context, name string, auth *image.AuthConfig, progress func(image.JSONMessage)) error
	// Upgrade replaces a disabled plugin's rootfs and manifest with remote's.
	Upgrade(ctx context.Context, name, remote string, privileges []plugin.Privilege, auth *image.AuthConfig, progress func(image.JSONMessage)) error
}
