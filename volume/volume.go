// Package volume owns the leaf interfaces of the volume subsystem: a Driver creates, finds and removes
// Volumes; a Volume is mounted and unmounted by holder ID. It imports only the standard library, so that
// the local driver, the plugin adapter, the store and the containers service can all depend on it.
package volume

import (
	"context"
	"time"
)

// DefaultDriverName is the built-in driver.
const DefaultDriverName = "local"

// Scopes a driver may report.
const (
	LocalScope  = "local"
	GlobalScope = "global"
)

// Driver is a volume driver: the built-in local one or a plugin adapter.
//
// Every method may do I/O (a plugin call has a deadline; ctx bounds it further) and must be safe for
// concurrent use. Errors are classified with containerd/errdefs: NotFound for a volume the driver does not
// have, InvalidArgument for bad names or options, Unavailable for a driver that cannot be reached.
type Driver interface {
	// Name is the driver's name as users give it (`local`, a plugin name).
	Name() string
	// Create makes a volume; creating an existing one returns it.
	Create(ctx context.Context, name string, opts map[string]string) (Volume, error)
	// Remove deletes a volume and its data.
	Remove(ctx context.Context, v Volume) error
	// List lists the driver's volumes.
	List(ctx context.Context) ([]Volume, error)
	// Get finds one volume; NotFound when the driver does not have it.
	Get(ctx context.Context, name string) (Volume, error)
	// Scope is LocalScope or GlobalScope; asked once per driver and cached by the implementation.
	Scope(ctx context.Context) string
}

// Volume is one volume of a driver.
type Volume interface {
	Name() string
	DriverName() string
	// Path is the mountpoint as far as it is known without asking the driver; may be "".
	Path() string
	// Mount makes the volume available for holder id and returns the host path. Each successful Mount is
	// matched by exactly one Unmount with the same id.
	Mount(ctx context.Context, id string) (string, error)
	Unmount(ctx context.Context, id string) error
	// CreatedAt is the creation time, zero when unknown.
	CreatedAt() (time.Time, error)
	// Status is driver-specific detail for inspect; may be nil.
	Status() map[string]any
}

// DetailedVolume is a Volume that carries the store's metadata (labels, options, scope).
type DetailedVolume interface {
	Volume
	Labels() map[string]string
	Options() map[string]string
	Scope() string
}

// LiveRestorer is implemented by volumes that can re-count a mount that survived a daemon restart
// (live-restored containers), instead of mounting again.
type LiveRestorer interface {
	LiveRestoreVolume(ctx context.Context, id string) error
}

// PathResolver is implemented by volumes whose mountpoint may be unknown until the driver is asked
// (plugin volumes: /VolumeDriver.Path). Listing never asks; inspect does, as dockerd.
type PathResolver interface {
	PathContext(ctx context.Context) (string, error)
}
