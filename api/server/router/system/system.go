// Package system is the router for /_ping, /version, /info, /events and /system/df. HTTP only: it decodes,
// calls its Backend, and encodes.
package system

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/server/router"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/system"
)

type systemRouter struct {
	b  Backend
	df DiskUsageBackend
	// acceptedEventFilters are the filter keys /events understands.
	acceptedEventFilters map[string]bool
}

// NewRouter builds the router. df may be nil; /system/df then reports nothing.
func NewRouter(b Backend, df DiskUsageBackend, acceptedEventFilters map[string]bool) router.Router {
	return &systemRouter{b: b, df: df, acceptedEventFilters: acceptedEventFilters}
}

func (s *systemRouter) Routes() []router.Route {
	return []router.Route{
		router.Get("/_ping", s.ping),
		router.Head("/_ping", s.ping),
		router.Get("/version", s.version),
		router.Get("/info", s.info),
		router.Get("/events", s.events),
		router.Get("/system/df", s.diskUsage),
	}
}

func (s *systemRouter) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", "inactive")
	if bv, ok := s.b.(BuilderVersioner); ok {
		h.Set("Builder-Version", bv.BuilderVersion())
	}
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		return nil
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *systemRouter) version(w http.ResponseWriter, r *http.Request) error {
	return httputils.WriteJSON(w, http.StatusOK, s.b.SystemVersion(r.Context()))
}

func (s *systemRouter) info(w http.ResponseWriter, r *http.Request) error {
	return httputils.WriteJSON(w, http.StatusOK, s.b.SystemInfo(r.Context()))
}

// parseTimestamp reads the CLI's `<seconds>[.<nanoseconds>]` form.
func parseTimestamp(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	secStr, nanoStr, hasNano := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil {
		return time.Time{}, httputils.InvalidParameter(fmt.Sprintf("invalid timestamp %q", v))
	}
	var nsec int64
	if hasNano {
		if len(nanoStr) > 9 {
			nanoStr = nanoStr[:9]
		}
		nanoStr += strings.Repeat("0", 9-len(nanoStr))
		if nsec, err = strconv.ParseInt(nanoStr, 10, 64); err != nil {
			return time.Time{}, httputils.InvalidParameter(fmt.Sprintf("invalid timestamp %q", v))
		}
	}
	return time.Unix(sec, nsec), nil
}

func (s *systemRouter) events(w http.ResponseWriter, r *http.Request) error {
	since, err := parseTimestamp(r.FormValue("since"))
	if err != nil {
		return err
	}
	until, err := parseTimestamp(r.FormValue("until"))
	if err != nil {
		return err
	}
	f, err := filters.FromJSON(r.FormValue("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(s.acceptedEventFilters); err != nil {
		return err
	}
	past, ch, cancel := s.b.SubscribeToEvents(since, until, f)
	defer cancel()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	httputils.FlushHeaders(w)
	enc := json.NewEncoder(httputils.NewFlushWriter(w))
	for _, m := range past {
		if err := enc.Encode(m); err != nil {
			return nil
		}
	}
	var end <-chan time.Time
	if !until.IsZero() {
		if !until.After(time.Now()) {
			return nil
		}
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		end = t.C
	}
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			if err := enc.Encode(m); err != nil {
				return nil
			}
		case <-end:
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}

func (s *systemRouter) diskUsage(w http.ResponseWriter, r *http.Request) error {
	opts := system.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true}
	if types := r.Form["type"]; len(types) > 0 {
		opts = system.DiskUsageOptions{}
		for _, t := range types {
			switch t {
			case "container":
				opts.Containers = true
			case "image":
				opts.Images = true
			case "volume":
				opts.Volumes = true
			case "build-cache":
				opts.BuildCache = true
			default:
				return httputils.InvalidParameter(fmt.Sprintf("unknown object type: %s", t))
			}
		}
	}
	if s.df == nil {
		return httputils.WriteJSON(w, http.StatusOK, map[string]any{"LayersSize": 0, "Images": []any{}, "Containers": []any{}, "Volumes": []any{}, "BuildCache": []any{}})
	}
	du, err := s.df.DiskUsage(r.Context(), opts)
	if err != nil {
		return err
	}
	adaptBuildCache(du, httputils.VersionFromContext(r.Context()))
	return httputils.WriteJSON(w, http.StatusOK, du)
}
