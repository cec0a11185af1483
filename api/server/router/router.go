// Package router owns the shape of an API router: a list of routes, each a method, a ServeMux path pattern
// and a handler that returns an error for the server to map. Routers for each area live in sub-packages and
// import only api/types and api/server/{router,httputils}.
package router

import "net/http"

// HandlerFunc handles one API request. A returned error is turned into a JSON error body and a status by
// the server, unless the handler already wrote a response (streams, hijacks).
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one API endpoint. Path is an http.ServeMux pattern without method and without version prefix,
// e.g. "/volumes/{name...}"; path values are read with r.PathValue.
type Route struct {
	Method  string
	Path    string
	Handler HandlerFunc
}

// Router is what an API area hands to the server.
type Router interface {
	Routes() []Route
}

// Get, Post, Put, Delete and Head build routes.
func Get(path string, h HandlerFunc) Route    { return Route{http.MethodGet, path, h} }
func Post(path string, h HandlerFunc) Route   { return Route{http.MethodPost, path, h} }
func Put(path string, h HandlerFunc) Route    { return Route{http.MethodPut, path, h} }
func Delete(path string, h HandlerFunc) Route { return Route{http.MethodDelete, path, h} }
func Head(path string, h HandlerFunc) Route   { return Route{http.MethodHead, path, h} }
