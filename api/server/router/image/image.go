// Package image is the Engine API router for /images: import, load, save, list, inspect, history, tag,
// delete, prune, pull, push and search, and for /distribution/{name}/json (registry inspect). It decodes requests (registry credentials from X-Registry-Auth), streams
// progress as JSON messages, and applies API-version shims. It imports only api/types and
// api/server/{router,httputils}; the work is done by a Backend.
package image

import (
	"net/http"
	"strings"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/server/router"
)

type imageRouter struct {
	backend Backend
}

// NewRouter returns the /images router.
func NewRouter(b Backend) router.Router {
	return &imageRouter{backend: b}
}

// Routes lists the endpoints. Image names contain slashes, so everything under /images/ that is not a
// literal route goes to one wildcard per method, which dispatches on the last path element.
func (r *imageRouter) Routes() []router.Route {
	return []router.Route{
		router.Get("/images/json", r.getImagesJSON),
		router.Get("/images/get", r.getImagesGet),
		router.Post("/images/create", r.postImagesCreate),
		router.Post("/images/load", r.postImagesLoad),
		router.Post("/images/prune", r.postImagesPrune),
		router.Get("/images/search", r.getImagesSearch),
		router.Get("/distribution/{rest...}", r.getDistributionInfo),
		router.Get("/images/{rest...}", r.getImageByName),
		router.Post("/images/{rest...}", r.postImageByName),
		router.Delete("/images/{rest...}", r.deleteImages),
		// docker login: registry credentials are this area's business, so /auth lives here.
		router.Post("/auth", r.postAuth),
	}
}

// splitAction splits "localhost:5000/x/push" into ("localhost:5000/x", "push").
func splitAction(rest string) (name, action string) {
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", rest
	}
	return rest[:i], rest[i+1:]
}

func (r *imageRouter) getImageByName(w http.ResponseWriter, req *http.Request) error {
	name, action := splitAction(req.PathValue("rest"))
	if name == "" {
		return httputils.NotFound("page not found")
	}
	switch action {
	case "json":
		return r.getImagesByName(w, req, name)
	case "history":
		return r.getImagesHistory(w, req, name)
	case "get":
		return r.getImageGet(w, req, name)
	}
	return httputils.NotFound("page not found")
}

func (r *imageRouter) postImageByName(w http.ResponseWriter, req *http.Request) error {
	name, action := splitAction(req.PathValue("rest"))
	if name == "" {
		return httputils.NotFound("page not found")
	}
	switch action {
	case "tag":
		return r.postImagesTag(w, req, name)
	case "push":
		return r.postImagesPush(w, req, name)
	}
	return httputils.NotFound("page not found")
}
