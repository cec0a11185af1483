// Package build is the Engine API router for image builds: POST /build (the classic builder, or BuildKit
// with version=2), POST /build/prune and /build/cancel (BuildKit's cache and jobs), and BuildKit's hijacked
// /grpc and /session. HTTP only: it decodes the query into api/types/build.Options and streams the
// backend's JSON messages.
package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/server/router"
	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/api/types/versions"
)

// Backend runs builds. Build writes its messages through out (safe for concurrent use by the backend's
// goroutines) and returns the image ID; an error with an ExitCode method is a failed RUN.
type Backend interface {
	Build(ctx context.Context, opts buildtypes.Options, body io.Reader, out func(image.JSONMessage)) (string, error)
}

type buildRouter struct {
	backend  Backend
	buildkit BuildKitBackend
	cache    CacheBackend
}

// NewRouter returns the build router; bk may be nil when BuildKit is not running.
func NewRouter(b Backend, bk BuildKitBackend, opts ...Option) router.Router {
	r := &buildRouter{backend: b, buildkit: bk}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *buildRouter) Routes() []router.Route {
	return append([]router.Route{
		router.Post("/build", r.postBuild),
		router.Post("/build/prune", r.postPrune),
		router.Post("/build/cancel", r.postCancel),
	}, r.buildKitRoutes()...)
}

// postCancel is POST /build/cancel. Only BuildKit jobs have IDs to cancel; dockerd answers 200 for any
// ID it does not know, and a classic build is cancelled by closing its request.
func (r *buildRouter) postCancel(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if req.FormValue("id") == "" {
		return invalidParamErr("build ID not provided")
	}
	if r.cache != nil {
		if err := r.cache.Cancel(req.Context(), req.FormValue("id")); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type invalidParamErr string

func (e invalidParamErr) Error() string     { return string(e) }
func (e invalidParamErr) InvalidParameter() {}

type notImplementedErr string

func (e notImplementedErr) Error() string   { return string(e) }
func (e notImplementedErr) NotImplemented() {}

func parseOptions(req *http.Request) (buildtypes.Options, error) {
	var o buildtypes.Options
	switch v := req.FormValue("version"); v {
	case "", "1":
	case "2":
		o.Version = "2"
	default:
		return o, invalidParamErr(fmt.Sprintf("invalid version %q", v))
	}
	if req.FormValue("securityopt") != "" {
		return o, invalidParamErr("security options are not supported on linux")
	}
	if httputils.BoolValue(req, "squash") {
		return o, invalidParamErr("squash is only supported with experimental mode")
	}
	switch iso := req.FormValue("isolation"); iso {
	case "", "default":
	default:
		return o, invalidParamErr(fmt.Sprintf("unsupported isolation: %q", iso))
	}
	if o.Version == "2" {
		if err := parseBuildKitOptions(req, &o); err != nil {
			return o, err
		}
	}
	for _, k := range []string{"cachefrom", "outputs"} {
		if v := req.FormValue(k); v != "" && o.Version != "2" {
			var list []json.RawMessage
			if err := json.Unmarshal([]byte(v), &list); err != nil {
				return o, invalidParamErr(fmt.Sprintf("invalid %s: %v", k, err))
			}
			if len(list) > 0 {
				return o, notImplementedErr(fmt.Sprintf("the %s option is not supported by berthd's classic builder", k))
			}
		}
	}
	if o.Version != "2" && req.FormValue("session") != "" && req.FormValue("remote") == "client-session" {
		return o, invalidParamErr("experimental session with v1 builder is no longer supported, use builder version v2 (BuildKit) instead")
	}
	o.Tags = req.Form["t"]
	o.Dockerfile = req.FormValue("dockerfile")
	o.Quiet = httputils.BoolValue(req, "q")
	o.NoCache = httputils.BoolValue(req, "nocache")
	o.Remove = httputils.BoolValueOrDefault(req, "rm", true)
	o.ForceRemove = httputils.BoolValue(req, "forcerm")
	if o.ForceRemove {
		o.Remove = true
	}
	o.Pull = httputils.BoolValue(req, "pull")
	o.Target = req.FormValue("target")
	o.NetworkMode = req.FormValue("networkmode")
	o.Platform = req.FormValue("platform")
	o.Remote = req.FormValue("remote")
	o.ExtraHosts = req.Form["extrahosts"]
	o.CPUSetCPUs = req.FormValue("cpusetcpus")
	o.CPUSetMems = req.FormValue("cpusetmems")
	o.CgroupParent = req.FormValue("cgroupparent")
	for k, p := range map[string]*int64{"shmsize": &o.ShmSize, "memory": &o.Memory, "memswap": &o.MemorySwap, "cpushares": &o.CPUShares, "cpuperiod": &o.CPUPeriod, "cpuquota": &o.CPUQuota} {
		n, err := httputils.Int64ValueOrDefault(req, k, 0)
		if err != nil {
			return o, err
		}
		*p = n
	}
	if v := req.FormValue("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.BuildArgs); err != nil {
			return o, invalidParamErr("error reading build args: " + err.Error())
		}
	}
	if v := req.FormValue("ulimits"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.Ulimits); err != nil {
			return o, invalidParamErr("error reading ulimit settings: " + err.Error())
		}
	}
	if v := req.FormValue("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.Labels); err != nil {
			return o, invalidParamErr("error reading labels: " + err.Error())
		}
	}
	return o, nil
}

// stream writes newline-delimited JSON messages, the status line with the first one.
type stream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	enc     *json.Encoder
	started bool
}

func (s *stream) send(m image.JSONMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "application/json")
		s.w.WriteHeader(http.StatusOK)
	}
	_ = s.enc.Encode(m)
}

func (r *buildRouter) postBuild(w http.ResponseWriter, req *http.Request) error {
	// Only the query: the body is the context, whatever Content-Type the client claims.
	req.Form = req.URL.Query()
	opts, err := parseOptions(req)
	if err != nil {
		return err
	}
	build := r.backend.Build
	if opts.Version == "2" {
		if r.cache == nil {
			return notImplementedErr("BuildKit (version=2) is not running in this daemon; use the classic builder (DOCKER_BUILDKIT=0)")
		}
		build = r.cache.Build
	}
	st := &stream{w: w, enc: json.NewEncoder(httputils.NewFlushWriter(w))}
	_, err = build(req.Context(), opts, req.Body, st.send)
	st.mu.Lock()
	started := st.started
	st.mu.Unlock()
	if err == nil {
		if !started {
			st.send(image.JSONMessage{})
		}
		return nil
	}
	if !started {
		return err
	}
	code := 0
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	st.send(image.JSONMessage{Error: &image.JSONError{Code: code, Message: err.Error()}, ErrorMessage: err.Error()})
	return nil
}

var pruneFilters = map[string]bool{
	"until": true, "unused-for": true, "id": true, "parent": true, "type": true, "description": true,
	"inuse": true, "shared": true, "private": true, "label": true, "label!": true,
}

// postPrune is POST /build/prune. The classic builder's cache is its intermediate images, which image
// prune owns, as with dockerd; this endpoint prunes BuildKit's cache.
func (r *buildRouter) postPrune(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	sizes := map[string]int64{}
	for _, k := range []string{"keep-storage", "reserved-space", "max-used-space", "min-free-space"} {
		if v := req.FormValue(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return invalidParamErr(fmt.Sprintf("%s is in bytes and expects an integer, got %v", k, v))
			}
			sizes[k] = n
		}
	}
	f, err := filters.FromJSON(req.FormValue("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(pruneFilters); err != nil {
		return err
	}
	if r.cache == nil {
		return httputils.WriteJSON(w, http.StatusOK, buildtypes.CachePruneReport{CachesDeleted: []string{}})
	}
	opts := buildtypes.PruneOptions{
		All:           httputils.BoolValue(req, "all"),
		ReservedSpace: sizes["keep-storage"],
		MaxUsedSpace:  sizes["max-used-space"],
		MinFreeSpace:  sizes["min-free-space"],
		Filters:       map[string][]string{},
	}
	// API 1.48 renamed keep-storage to reserved-space; older clients send only the former.
	if v := httputils.VersionFromContext(req.Context()); v == "" || !versions.LessThan(v, "1.48") {
		if n, ok := sizes["reserved-space"]; ok {
			opts.ReservedSpace = n
		}
	} else {
		opts.MaxUsedSpace, opts.MinFreeSpace = 0, 0
	}
	for _, k := range f.Keys() {
		opts.Filters[k] = f.Get(k)
	}
	rep, err := r.cache.Prune(req.Context(), opts)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}
