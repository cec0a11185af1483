// Package volume is the Engine API router for /volumes: it decodes requests, applies API-version shims
// (prune at API < 1.42 removes every unused volume) and encodes answers. It imports only api/types and
// api/server/{router,httputils}; the work is done by a Backend.
package volume

import "github.com/berthd/berthd/api/server/router"

type volumeRouter struct {
	backend Backend
}

// NewRouter returns the /volumes router.
func NewRouter(b Backend) router.Router {
	return &volumeRouter{backend: b}
}

// Routes lists the endpoints. `{name...}` accepts any characters, `/` included, as dockerd does.
func (r *volumeRouter) Routes() []router.Route {
	return []router.Route{
		router.Get("/volumes", r.getVolumesList),
		router.Get("/volumes/{name...}", r.getVolumeByName),
		router.Post("/volumes/create", r.postVolumesCreate),
		router.Post("/volumes/prune", r.postVolumesPrune),
		router.Delete("/volumes/{name...}", r.deleteVolumes),
	}
}
