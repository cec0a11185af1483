package volume

import (
	"context"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/volume"
)

// Backend is what the volume router needs from the volume service. Errors carry their class
// (containerd/errdefs or a marker method); the server maps them to status codes. Filters arrive already
// parsed and version-adjusted; the backend validates their keys.
type Backend interface {
	// List returns the volumes matching f and warnings about drivers that could not be listed.
	List(ctx context.Context, f filters.Args) ([]*volume.Volume, []string, error)
	// Inspect returns one volume with its driver Status.
	Inspect(ctx context.Context, name string) (*volume.Volume, error)
	// CreateVolume creates (or returns the existing) volume; an empty Name creates an anonymous one.
	CreateVolume(ctx context.Context, req volume.CreateOptions) (*volume.Volume, error)
	// RemoveVolume removes an unreferenced volume; force makes "not found" a success and forgets a volume
	// its driver fails to remove.
	RemoveVolume(ctx context.Context, name string, force bool) error
	// Prune removes unused local volumes selected by f (all, label, label!).
	Prune(ctx context.Context, f filters.Args) (*volume.PruneReport, error)
}
