package container

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/api/types/versions"
)

func (r *containerRouter) getContainersStats(w http.ResponseWriter, req *http.Request) error {
	stream := httputils.BoolValueOrDefault(req, "stream", true)
	oneShot := false
	if versions.GreaterThanOrEqualTo(httputils.VersionFromContext(req.Context()), "1.41") {
		oneShot = httputils.BoolValue(req, "one-shot")
	}
	if stream && oneShot {
		return httputils.InvalidParameter("cannot have stream=true and one-shot=true")
	}
	started := false
	enc := json.NewEncoder(w)
	return r.backend.ContainerStats(req.Context(), req.PathValue("name"), stream, oneShot, func(s container.StatsResponse) error {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
		httputils.FlushHeaders(w)
		return nil
	})
}

func (r *containerRouter) getContainersExport(w http.ResponseWriter, req *http.Request) error {
	w.Header().Set("Content-Type", "application/x-tar")
	return r.backend.ContainerExport(req.Context(), req.PathValue("name"), w)
}

func setPathStat(w http.ResponseWriter, st *container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(req *http.Request) (string, error) {
	p := req.Form.Get("path")
	if p == "" {
		return "", httputils.InvalidParameter("path cannot be empty")
	}
	return p, nil
}

func (r *containerRouter) headContainersArchive(w http.ResponseWriter, req *http.Request) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	st, err := r.backend.ContainerArchiveStat(req.Context(), req.PathValue("name"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *containerRouter) getContainersArchive(w http.ResponseWriter, req *http.Request) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	st, err := r.backend.ContainerArchiveStat(req.Context(), req.PathValue("name"), p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	return r.backend.ContainerArchive(req.Context(), req.PathValue("name"), p, w)
}

func (r *containerRouter) putContainersArchive(w http.ResponseWriter, req *http.Request) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	if err := r.backend.ContainerExtractToDir(req.Context(), req.PathValue("name"), p, req.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *containerRouter) getContainersChanges(w http.ResponseWriter, req *http.Request) error {
	ch, err := r.backend.ContainerChanges(req.Context(), req.PathValue("name"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, ch)
}

func (r *containerRouter) postCommit(w http.ResponseWriter, req *http.Request) error {
	var cfg container.Config
	opts := container.CommitOptions{
		Repo: req.Form.Get("repo"), Tag: req.Form.Get("tag"), Comment: req.Form.Get("comment"),
		Author: req.Form.Get("author"), Changes: req.Form["changes"],
		Pause: httputils.BoolValueOrDefault(req, "pause", true),
	}
	if err := httputils.ReadJSON(req, &cfg); err == nil {
		opts.Config = &cfg
	} else if !httputils.IsEOF(err) {
		return err
	}
	id, err := r.backend.ContainerCommit(req.Context(), req.Form.Get("container"), opts)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, container.IDResponse{ID: id})
}

func (r *containerRouter) postContainersUpdate(w http.ResponseWriter, req *http.Request) error {
	var u container.UpdateConfig
	if err := httputils.ReadJSON(req, &u); err != nil && !httputils.IsEOF(err) {
		return err
	}
	if versions.LessThan(httputils.VersionFromContext(req.Context()), "1.40") {
		// PidsLimit can be updated from API 1.40 on; older clients' values are ignored, as dockerd does.
		u.PidsLimit = nil
	}
	warnings, err := r.backend.ContainerUpdate(req.Context(), req.PathValue("name"), u)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
}
