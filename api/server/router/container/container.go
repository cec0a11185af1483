// Package container is the Engine API router for /containers and /exec: it decodes requests, applies the
// streaming rules the docker CLI depends on (wait flushes its headers before the container exits; attach
// and exec start hijack the connection with 101 UPGRADED and stdcopy framing unless the process has a
// TTY; content types by API version) and encodes answers. It imports only api/types and
// api/server/{router,httputils}; the work is done by a Backend.
package container

import "github.com/berthd/berthd/api/server/router"

type containerRouter struct {
	backend Backend
}

// NewRouter returns the /containers and /exec router.
func NewRouter(b Backend) router.Router {
	return &containerRouter{backend: b}
}

// Routes lists the endpoints.
func (r *containerRouter) Routes() []router.Route {
	return []router.Route{
		router.Get("/containers/json", r.getContainersJSON),
		router.Post("/containers/create", r.postContainersCreate),
		router.Post("/commit", r.postCommit),
		router.Post("/containers/prune", r.postContainersPrune),
		router.Get("/containers/{name}/json", r.getContainersByName),
		router.Get("/containers/{name}/logs", r.getContainersLogs),
		router.Get("/containers/{name}/top", r.getContainersTop),
		router.Get("/containers/{name}/stats", r.getContainersStats),
		router.Get("/containers/{name}/export", r.getContainersExport),
		router.Get("/containers/{name}/changes", r.getContainersChanges),
		router.Head("/containers/{name}/archive", r.headContainersArchive),
		router.Get("/containers/{name}/archive", r.getContainersArchive),
		router.Put("/containers/{name}/archive", r.putContainersArchive),
		router.Post("/containers/{name}/start", r.postContainersStart),
		router.Post("/containers/{name}/stop", r.postContainersStop),
		router.Post("/containers/{name}/kill", r.postContainersKill),
		router.Post("/containers/{name}/restart", r.postContainersRestart),
		router.Post("/containers/{name}/wait", r.postContainersWait),
		router.Post("/containers/{name}/rename", r.postContainersRename),
		router.Post("/containers/{name}/pause", r.postContainersPause),
		router.Post("/containers/{name}/unpause", r.postContainersUnpause),
		router.Post("/containers/{name}/resize", r.postContainersResize),
		router.Post("/containers/{name}/update", r.postContainersUpdate),
		router.Post("/containers/{name}/attach", r.postContainersAttach),
		router.Delete("/containers/{name}", r.deleteContainers),
		router.Post("/containers/{name}/exec", r.postContainerExecCreate),
		router.Post("/exec/{id}/start", r.postContainerExecStart),
		router.Post("/exec/{id}/resize", r.postContainerExecResize),
		router.Get("/exec/{id}/json", r.getExecByID),
	}
}
