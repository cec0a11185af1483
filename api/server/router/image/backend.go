package image

import (
	"context"
	"io"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/image"
)

// Backend is what the image router needs from the image service. Errors carry their containerd/errdefs
// class. progress receives the messages of a streaming call in order; the router writes the first one
// only when it arrives, so an error returned before any progress is answered with its own status.
type Backend interface {
	// ImportImage makes a one-layer image from a root filesystem tar read from src, or fetched from srcURL
	// when that is not "-"; it reports and returns the new ID.
	ImportImage(ctx context.Context, src io.Reader, srcURL, repo, tag, message string, changes []string, platform string, progress func(image.JSONMessage)) (string, error)
	// LoadImage loads a `docker save` archive or OCI layout.
	LoadImage(ctx context.Context, r io.Reader, quiet bool, progress func(image.JSONMessage)) error
	// ExportImages writes the named images as one archive; names are resolved before anything is written.
	ExportImages(ctx context.Context, names []string, w io.Writer) error
	// Images lists images.
	Images(ctx context.Context, opts image.ListOptions) ([]*image.Summary, error)
	// ImageInspect and ImageHistory describe one image (by name, ID or short ID).
	ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error)
	ImageHistory(ctx context.Context, name string) ([]*image.HistoryResponseItem, error)
	// TagImage points repo:tag at the image name resolves to.
	TagImage(ctx context.Context, name, repo, tag string) error
	// ImageDelete untags or deletes, with dockerd's conflict rules.
	ImageDelete(ctx context.Context, name string, force, prune bool) ([]image.DeleteResponse, error)
	// ImagesPrune deletes unused images selected by f.
	ImagesPrune(ctx context.Context, f filters.Args) (*image.PruneReport, error)
	// PullImage and PushImage talk to a registry with the client's credentials (nil: anonymous).
	PullImage(ctx context.Context, name, tag, platform string, auth *image.AuthConfig, progress func(image.JSONMessage)) error
	PushImage(ctx context.Context, name, tag string, auth *image.AuthConfig, progress func(image.JSONMessage)) error
	// DistributionInspect asks name's registry what name points at (GET /distribution/{name}/json).
	DistributionInspect(ctx context.Context, name string, auth *image.AuthConfig) (*image.DistributionInspect, error)
	// SearchImages searches a registry (GET /images/search); options are checked before it is asked.
	SearchImages(ctx context.Context, opts image.SearchOptions, auth *image.AuthConfig) ([]image.SearchResult, error)
	// AuthenticateToRegistry checks credentials for `docker login`.
	AuthenticateToRegistry(ctx context.Context, auth *image.AuthConfig) (*image.AuthResponse, error)
}
