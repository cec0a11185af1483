// Package server owns the Engine API's HTTP side: it serves every listener, strips the `/v{X.Y}` prefix and
// checks the version, sets the headers dockerd sets on every routed response, dispatches to the routers
// through an http.ServeMux, and turns handler errors into JSON bodies with the status of their class.
// It knows routers only through api/server/router.
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/berthd/berthd/api"
	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/server/router"
	"github.com/berthd/berthd/api/types/versions"
	"github.com/berthd/berthd/metrics"
	"github.com/containerd/log"
)

// Config is what the server needs to know about the daemon it fronts.
type Config struct {
	// ServerVersion is the engine version shown in the Server header.
	ServerVersion string
	// Experimental is echoed in Docker-Experimental.
	Experimental bool
}

// Server is the API server. Routes are installed once with InitRouter before Serve.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	mu      sync.Mutex
	servers []*http.Server
	// middleware wraps every route's handler (authorization plugins); set with Use before InitRouter.
	middleware []Middleware
}

// Middleware wraps a route's handler.
type Middleware func(router.HandlerFunc) router.HandlerFunc

// Use adds a middleware for the routes installed afterwards; the first added runs first.
func (s *Server) Use(m Middleware) { s.middleware = append(s.middleware, m) }

// New builds a server with no routes.
func New(cfg Config) *Server {
	return &Server{cfg: cfg, mux: http.NewServeMux()}
}

// InitRouter installs the routes of every router. A duplicate pattern panics at start, which is a bug in
// the tree, not a runtime condition.
func (s *Server) InitRouter(routers ...router.Router) {
	for _, rt := range routers {
		for _, r := range rt.Routes() {
			h := r.Handler
			for i := len(s.middleware) - 1; i >= 0; i-- {
				h = s.middleware[i](h)
			}
			s.mux.HandleFunc(r.Method+" "+r.Path, metrics.InstrumentAPI(r.Path, func(w http.ResponseWriter, req *http.Request) {
				s.handle(w, req, h)
			}))
		}
	}
}

var versionPrefix = regexp.MustCompile(`^/v([0-9][0-9.]*)(/.*)$`)

// ServeHTTP resolves the version prefix and dispatches. Unknown routes get dockerd's bare 404 (no version
// headers), unknown methods too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	version := api.DefaultVersion
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		version = m[1]
		r.URL.Path = m[2]
		r.URL.RawPath = ""
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		httputils.WriteJSON(w, http.StatusNotFound, httputils.ErrorBody{Message: "page not found"})
		return
	}
	s.setHeaders(w)
	if versions.GreaterThanOrEqualTo(version, api.DefaultVersion) && version != api.DefaultVersion {
		httputils.WriteError(w, httputils.InvalidParameter(fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, api.DefaultVersion)))
		return
	}
	if versions.LessThan(version, api.MinSupportedVersion) {
		httputils.WriteError(w, httputils.InvalidParameter(fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, api.MinSupportedVersion)))
		return
	}
	r = r.WithContext(httputils.WithVersion(r.Context(), version))
	s.mux.ServeHTTP(w, r)
}

func (s *Server) setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Server", "Docker/"+s.cfg.ServerVersion+" (linux)")
	h.Set("Api-Version", api.DefaultVersion)
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", fmt.Sprint(s.cfg.Experimental))
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, h router.HandlerFunc) {
	ctx := r.Context()
	log.G(ctx).Debugf("Calling %s %s", r.Method, r.URL.Path)
	if err := httputils.ParseForm(r); err != nil {
		httputils.WriteError(w, err)
		return
	}
	rw := &responseWriter{ResponseWriter: w}
	if err := h(rw, r); err != nil {
		if rw.wrote {
			// The status line is gone; a stream's own error framing is the handler's job.
			log.G(ctx).WithError(err).WithField("path", r.URL.Path).Warn("error after response started")
			return
		}
		writeError(ctx, w, r, err)
	}
}

// responseWriter remembers whether a response was started, and keeps Flush and Hijack reachable for
// streaming and hijacking handlers.
type responseWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *responseWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

func (w *responseWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.wrote = true
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	return h.Hijack()
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Serve serves every listener until Shutdown; it returns when all have stopped. A listener failing for
// another reason than shutdown is returned as the error.
func (s *Server) Serve(ctx context.Context, listeners []net.Listener) error {
	errCh := make(chan error, len(listeners))
	for _, l := range listeners {
		srv := &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 5 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
		go func(l net.Listener) {
			log.G(ctx).Infof("API listen on %s", l.Addr())
			err := srv.Serve(l)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errCh <- err
		}(l)
	}
	var first error
	for range listeners {
		if err := <-errCh; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown stops accepting and waits for idle connections until ctx ends; streams (events, logs -f) are
// then cut.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func(srv *http.Server) {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		}(srv)
	}
	wg.Wait()
}
