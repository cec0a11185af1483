package container

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/api/types/versions"
)

func (r *containerRouter) getContainersJSON(w http.ResponseWriter, req *http.Request) error {
	opts := container.ListOptions{
		All: httputils.BoolValue(req, "all"), Size: httputils.BoolValue(req, "size"),
		Since: req.Form.Get("since"), Before: req.Form.Get("before"), Filters: req.Form.Get("filters"),
		Latest: httputils.BoolValue(req, "latest"),
	}
	if v := req.Form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return httputils.InvalidParameter("invalid limit: " + v)
		}
		opts.Limit = n
	}
	list, err := r.backend.ContainerList(req.Context(), opts)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, list)
}

func (r *containerRouter) getContainersByName(w http.ResponseWriter, req *http.Request) error {
	c, err := r.backend.ContainerInspect(req.Context(), req.PathValue("name"), httputils.BoolValue(req, "size"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, c)
}

func (r *containerRouter) postContainersCreate(w http.ResponseWriter, req *http.Request) error {
	var body container.CreateRequest
	if err := httputils.ReadJSON(req, &body); err != nil {
		if httputils.IsEOF(err) {
			return httputils.InvalidParameter("config cannot be empty in order to create a container")
		}
		return err
	}
	if versions.GreaterThanOrEqualTo(httputils.VersionFromContext(req.Context()), "1.41") {
		body.Platform = req.Form.Get("platform")
	}
	if body.Healthcheck != nil && versions.LessThan(httputils.VersionFromContext(req.Context()), "1.44") {
		// StartInterval came with API 1.44; older clients' values are ignored, as dockerd does.
		body.Healthcheck.StartInterval = 0
	}
	if body.HostConfig != nil && body.HostConfig.IpcMode == "" && versions.LessThan(httputils.VersionFromContext(req.Context()), "1.40") {
		// Clients older than API 1.40 expect dockerd's old default.
		body.HostConfig.IpcMode = "shareable"
	}
	resp, err := r.backend.ContainerCreate(req.Context(), req.Form.Get("name"), &body)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return httputils.WriteJSON(w, http.StatusCreated, resp)
}

func (r *containerRouter) postContainersStart(w http.ResponseWriter, req *http.Request) error {
	if err := r.backend.ContainerStart(req.Context(), req.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopTimeout reads `t` (or `timeout`); absent means the container's own timeout.
func stopTimeout(req *http.Request) (*int, error) {
	v := req.Form.Get("t")
	if v == "" {
		v = req.Form.Get("timeout")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, httputils.InvalidParameter("invalid value for t: " + v)
	}
	return &n, nil
}

func (r *containerRouter) postContainersStop(w http.ResponseWriter, req *http.Request) error {
	t, err := stopTimeout(req)
	if err != nil {
		return err
	}
	if err := r.backend.ContainerStop(req.Context(), req.PathValue("name"), t, req.Form.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *containerRouter) postContainersKill(w http.ResponseWriter, req *http.Request) error {
	if err := r.backend.ContainerKill(req.Context(), req.PathValue("name"), req.Form.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *containerRouter) postContainersRestart(w http.ResponseWriter, req *http.Request) error {
	t, err := stopTimeout(req)
	if err != nil {
		return err
	}
	if err := r.backend.ContainerRestart(req.Context(), req.PathValue("name"), t, req.Form.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *containerRouter) deleteContainers(w http.ResponseWriter, req *http.Request) error {
	if httputils.BoolValue(req, "link") {
		return httputils.InvalidParameter("links are not supported")
	}
	if err := r.backend.ContainerRemove(req.Context(), req.PathValue("name"), httputils.BoolValue(req, "force"), httputils.BoolValue(req, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *containerRouter) postContainersRename(w http.ResponseWriter, req *http.Request) error {
	if err := r.backend.ContainerRename(req.Context(), req.PathValue("name"), req.Form.Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *containerRouter) postContainersPause(w http.ResponseWriter, req *http.Request) error {
	if err := r.backend.ContainerPause(req.Context(), req.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *containerRouter) postContainersUnpause(w http.ResponseWriter, req *http.Request) error {
	if err := r.backend.ContainerUnpause(req.Context(), req.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func dims(req *http.Request) (int, int, error) {
	h, err := strconv.Atoi(req.Form.Get("h"))
	if err != nil {
		return 0, 0, httputils.InvalidParameter("invalid value for h: " + req.Form.Get("h"))
	}
	wd, err := strconv.Atoi(req.Form.Get("w"))
	if err != nil {
		return 0, 0, httputils.InvalidParameter("invalid value for w: " + req.Form.Get("w"))
	}
	return h, wd, nil
}

func (r *containerRouter) postContainersResize(w http.ResponseWriter, req *http.Request) error {
	h, wd, err := dims(req)
	if err != nil {
		return err
	}
	if err := r.backend.ContainerResize(req.Context(), req.PathValue("name"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// postContainersWait sends 200 headers at once (the CLI waits for them before it starts the
// container) and the body when the condition holds.
func (r *containerRouter) postContainersWait(w http.ResponseWriter, req *http.Request) error {
	cond := req.Form.Get("condition")
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return httputils.InvalidParameter(fmt.Sprintf("invalid condition: %q", cond))
	}
	ch, err := r.backend.ContainerWait(req.Context(), req.PathValue("name"), cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	httputils.FlushHeaders(w)
	select {
	case st := <-ch:
		return json.NewEncoder(w).Encode(st)
	case <-req.Context().Done():
		return nil
	}
}

func (r *containerRouter) getContainersLogs(w http.ResponseWriter, req *http.Request) error {
	opts := container.LogsOptions{
		ShowStdout: httputils.BoolValue(req, "stdout"), ShowStderr: httputils.BoolValue(req, "stderr"),
		Since: req.Form.Get("since"), Until: req.Form.Get("until"), Timestamps: httputils.BoolValue(req, "timestamps"),
		Follow: httputils.BoolValue(req, "follow"), Tail: req.Form.Get("tail"), Details: httputils.BoolValue(req, "details"),
	}
	tty, run, err := r.backend.ContainerLogs(req.Context(), req.PathValue("name"), opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", streamType(req, tty))
	w.WriteHeader(http.StatusOK)
	httputils.FlushHeaders(w)
	var out io.Writer = w
	if opts.Follow {
		out = httputils.NewFlushWriter(w)
	}
	stdout, stderr := outputs(out, tty)
	return run(stdout, stderr)
}

func streamType(req *http.Request, tty bool) string {
	if !tty && versions.GreaterThanOrEqualTo(httputils.VersionFromContext(req.Context()), "1.42") {
		return "application/vnd.docker.multiplexed-stream"
	}
	return "application/vnd.docker.raw-stream"
}

func (r *containerRouter) getContainersTop(w http.ResponseWriter, req *http.Request) error {
	top, err := r.backend.ContainerTop(req.Context(), req.PathValue("name"), req.Form.Get("ps_args"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, top)
}

func (r *containerRouter) postContainersPrune(w http.ResponseWriter, req *http.Request) error {
	rep, err := r.backend.ContainersPrune(req.Context(), req.Form.Get("filters"))
	if err != nil {
		return err
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

func (r *containerRouter) postContainerExecCreate(w http.ResponseWriter, req *http.Request) error {
	var opts container.ExecOptions
	if err := httputils.ReadJSON(req, &opts); err != nil {
		if httputils.IsEOF(err) {
			return httputils.InvalidParameter("No exec command specified")
		}
		return err
	}
	if versions.LessThan(httputils.VersionFromContext(req.Context()), "1.42") {
		opts.ConsoleSize = nil
	}
	id, err := r.backend.ExecCreate(req.Context(), req.PathValue("name"), opts)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, container.IDResponse{ID: id})
}

func (r *containerRouter) getExecByID(w http.ResponseWriter, req *http.Request) error {
	e, err := r.backend.ExecInspect(req.Context(), req.PathValue("id"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, e)
}

func (r *containerRouter) postContainerExecResize(w http.ResponseWriter, req *http.Request) error {
	h, wd, err := dims(req)
	if err != nil {
		return err
	}
	if err := r.backend.ExecResize(req.Context(), req.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func upgradeWanted(req *http.Request) bool {
	return strings.EqualFold(req.Header.Get("Upgrade"), "tcp") || strings.Contains(strings.ToLower(req.Header.Get("Connection")), "upgrade")
}
