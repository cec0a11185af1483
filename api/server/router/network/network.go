// Package network is the Engine API router for /networks: it decodes requests, applies API-version
// shims and encodes answers. It imports only api/types and api/server/{router,httputils}; the work is
// done by a Backend.
package network

import (
	"context"
	"net/http"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/server/router"
	"github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/network"
	"github.com/berthd/berthd/api/types/versions"
)

// Backend is what the router needs. Errors carry their errdefs class: NotFound for an unknown network or
// container, InvalidArgument for bad input (ambiguous names included), PermissionDenied (403) for
// predefined networks, overlapping pools and networks in use, Conflict for duplicate names.
type Backend interface {
	// NetworkList returns the networks matching f; Containers is always empty.
	NetworkList(ctx context.Context, f filters.Args) ([]network.Inspect, error)
	// NetworkInspect returns one network with its running containers.
	NetworkInspect(ctx context.Context, term string) (network.Inspect, error)
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkRemove(ctx context.Context, term string) error
	NetworkPrune(ctx context.Context, f filters.Args) (network.PruneReport, error)
	// NetworkConnect attaches a container: now if it runs, else stored for its next start.
	NetworkConnect(ctx context.Context, term, containerRef string, cfg *container.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, term, containerRef string, force bool) error
}

type networkRouter struct{ backend Backend }

// NewRouter returns the /networks router.
func NewRouter(b Backend) router.Router { return &networkRouter{backend: b} }

// Routes lists the endpoints.
func (r *networkRouter) Routes() []router.Route {
	return []router.Route{
		router.Get("/networks", r.list),
		router.Get("/networks/{$}", r.list),
		router.Get("/networks/{id...}", r.inspect),
		router.Post("/networks/create", r.create),
		router.Post("/networks/prune", r.prune),
		router.Post("/networks/{id}/connect", r.connect),
		router.Post("/networks/{id}/disconnect", r.disconnect),
		router.Delete("/networks/{id...}", r.remove),
	}
}

type invalidParam struct{ msg string }

func (e invalidParam) Error() string     { return e.msg }
func (e invalidParam) InvalidParameter() {}

func (r *networkRouter) list(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	l, err := r.backend.NetworkList(req.Context(), f)
	if err != nil {
		return err
	}
	if l == nil {
		l = []network.Inspect{}
	}
	return httputils.WriteJSON(w, http.StatusOK, l)
}

func (r *networkRouter) inspect(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if v := req.Form.Get("verbose"); v != "" && v != "true" && v != "false" && v != "1" && v != "0" {
		return invalidParam{"invalid value for verbose: " + v}
	}
	n, err := r.backend.NetworkInspect(req.Context(), req.PathValue("id"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, n)
}

// DecodeCreate reads a create body (exported for the fuzz test's seed).
func DecodeCreate(req *http.Request) (network.CreateRequest, error) {
	var c network.CreateRequest
	if err := httputils.ReadJSON(req, &c); err != nil {
		if httputils.IsEOF(err) {
			return c, invalidParam{"invalid JSON: request body is empty"}
		}
		return c, err
	}
	// EnableIPv4 is ignored for API < 1.48, as dockerd.
	if v := httputils.VersionFromContext(req.Context()); v != "" && versions.LessThan(v, "1.48") {
		c.EnableIPv4 = nil
	}
	return c, nil
}

func (r *networkRouter) create(w http.ResponseWriter, req *http.Request) error {
	c, err := DecodeCreate(req)
	if err != nil {
		return err
	}
	resp, err := r.backend.NetworkCreate(req.Context(), c)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, resp)
}

// DecodeConnect reads a connect body.
func DecodeConnect(req *http.Request) (network.ConnectRequest, error) {
	var c network.ConnectRequest
	if err := httputils.ReadJSON(req, &c); err != nil {
		if httputils.IsEOF(err) {
			return c, invalidParam{"invalid JSON: request body is empty"}
		}
		return c, err
	}
	if c.EndpointConfig != nil {
		// Operational fields are the daemon's to fill, never the client's.
		e := c.EndpointConfig
		e.NetworkID, e.EndpointID, e.Gateway, e.IPAddress, e.IPPrefixLen = "", "", "", "", 0
		e.IPv6Gateway, e.GlobalIPv6Address, e.GlobalIPv6PrefixLen, e.DNSNames = "", "", 0, nil
		if v := httputils.VersionFromContext(req.Context()); v != "" && versions.LessThan(v, "1.48") {
			e.GwPriority = 0
		}
	}
	return c, nil
}

func (r *networkRouter) connect(w http.ResponseWriter, req *http.Request) error {
	c, err := DecodeConnect(req)
	if err != nil {
		return err
	}
	if err := r.backend.NetworkConnect(req.Context(), req.PathValue("id"), c.Container, c.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *networkRouter) disconnect(w http.ResponseWriter, req *http.Request) error {
	var c network.DisconnectRequest
	if err := httputils.ReadJSON(req, &c); err != nil {
		if httputils.IsEOF(err) {
			return invalidParam{"invalid JSON: request body is empty"}
		}
		return err
	}
	if err := r.backend.NetworkDisconnect(req.Context(), req.PathValue("id"), c.Container, c.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *networkRouter) remove(w http.ResponseWriter, req *http.Request) error {
	if err := r.backend.NetworkRemove(req.Context(), req.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *networkRouter) prune(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := r.backend.NetworkPrune(req.Context(), f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}
