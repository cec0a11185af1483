// Package plugin is the Engine API router for /plugins (managed plugins): it decodes requests, calls
// a Backend and encodes answers with dockerd's statuses (enable/disable/remove answer 200 with an empty
// body, create and set 204). It imports only api/types and api/server/{router,httputils}.
package plugin

import "github.com/berthd/berthd/api/server/router"

type pluginRouter struct {
	backend Backend
}

// NewRouter returns the /plugins router.
func NewRouter(b Backend) router.Router {
	return &pluginRouter{backend: b}
}

// Routes lists the endpoints. Plugin names may contain '/', so per-plugin routes take the rest of the
// path and split off the action (json, enable, ...) at the last '/'.
func (r *pluginRouter) Routes() []router.Route {
	return []router.Route{
		router.Get("/plugins", r.list),
		router.Get("/plugins/privileges", r.privileges),
		router.Get("/plugins/{rest...}", r.getByName),
		router.Post("/plugins/create", r.create),
		router.Post("/plugins/pull", r.pull),
		router.Post("/plugins/{rest...}", r.postAction),
		router.Delete("/plugins/{rest...}", r.remove),
	}
}
