package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/berthd/berthd/api/types/image"
)

// CacheBackend is BuildKit's side of the build endpoints: POST /build?version=2, /build/cancel and
// /build/prune. Build writes through out as Backend.Build does; errors carry their errdefs class.
type CacheBackend interface {
	Build(ctx context.Context, opts buildtypes.Options, body io.Reader, out func(image.JSONMessage)) (string, error)
	// Cancel stops the BuildKit build with this ID; an unknown ID is not an error.
	Cancel(ctx context.Context, id string) error
	Prune(ctx context.Context, opts buildtypes.PruneOptions) (buildtypes.CachePruneReport, error)
}

// Option configures the router.
type Option func(*buildRouter)

// WithBuildKit serves version=2 builds, cancellation and cache pruning through c.
func WithBuildKit(c CacheBackend) Option {
	return func(r *buildRouter) { r.cache = c }
}

// parseBuildKitOptions reads the parameters only version=2 has.
func parseBuildKitOptions(req *http.Request, o *buildtypes.Options) error {
	o.SessionID = req.FormValue("session")
	o.BuildID = req.FormValue("buildid")
	if v := req.FormValue("cachefrom"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.CacheFrom); err != nil {
			return invalidParamErr(fmt.Sprintf("invalid cachefrom: %v", err))
		}
	}
	if v := req.FormValue("outputs"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.Outputs); err != nil {
			return invalidParamErr(fmt.Sprintf("invalid outputs: %v", err))
		}
		if len(o.Outputs) > 1 {
			return invalidParamErr("multiple outputs not supported")
		}
	}
	return nil
}
