package plugin

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/plugin"
)

func pageNotFound(req *http.Request) error {
	return httputils.NotFound("page not found: " + req.URL.Path)
}

// splitAction splits "name/with/slashes/enable" into the name and the action.
func splitAction(rest string) (string, string) {
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

func (r *pluginRouter) list(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	ps, err := r.backend.List(req.Context(), f)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []plugin.Plugin{}
	}
	return httputils.WriteJSON(w, http.StatusOK, ps)
}

func (r *pluginRouter) getByName(w http.ResponseWriter, req *http.Request) error {
	name, action := splitAction(req.PathValue("rest"))
	if action != "json" || name == "" {
		return pageNotFound(req)
	}
	p, err := r.backend.Inspect(req.Context(), name)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, p)
}

func (r *pluginRouter) privileges(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	privs, err := r.backend.Privileges(req.Context(), req.Form.Get("remote"), httputils.RegistryAuth(req))
	if err != nil {
		return err
	}
	if privs == nil {
		privs = []plugin.Privilege{}
	}
	return httputils.WriteJSON(w, http.StatusOK, privs)
}

func (r *pluginRouter) create(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if err := r.backend.Create(req.Context(), req.Form.Get("name"), req.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *pluginRouter) pull(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	var privs []plugin.Privilege
	if err := httputils.ReadJSON(req, &privs); err != nil && !httputils.IsEOF(err) {
		return err
	}
	remote := req.Form.Get("remote")
	name, err := r.backend.PullName(remote, req.Form.Get("name"))
	if err != nil {
		return err
	}
	w.Header().Set("Docker-Plugin-Name", name)
	st := httputils.NewProgressStream(w)
	return st.Finish(r.backend.Pull(req.Context(), remote, name, privs, httputils.RegistryAuth(req), st.Send))
}

func (r *pluginRouter) postAction(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	name, action := splitAction(req.PathValue("rest"))
	if name == "" {
		return pageNotFound(req)
	}
	ctx := req.Context()
	switch action {
	case "enable":
		// As dockerd: the timeout is required and a bad one is a plain (500) error.
		timeout, err := strconv.Atoi(req.Form.Get("timeout"))
		if err != nil {
			return err
		}
		if err := r.backend.Enable(ctx, name, timeout); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
	case "disable":
		if err := r.backend.Disable(ctx, name, httputils.BoolValue(req, "force")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
	case "set":
		var args []string
		if err := httputils.ReadJSON(req, &args); err != nil {
			if httputils.IsEOF(err) {
				return httputils.InvalidParameter("no settings given")
			}
			return err
		}
		if err := r.backend.Set(ctx, name, args); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
	case "push":
		st := httputils.NewProgressStream(w)
		return st.Finish(r.backend.Push(ctx, name, httputils.RegistryAuth(req), st.Send))
	case "upgrade":
		var privs []plugin.Privilege
		if err := httputils.ReadJSON(req, &privs); err != nil && !httputils.IsEOF(err) {
			return err
		}
		st := httputils.NewProgressStream(w)
		return st.Finish(r.backend.Upgrade(ctx, name, req.Form.Get("remote"), privs, httputils.RegistryAuth(req), st.Send))
	default:
		return pageNotFound(req)
	}
	return nil
}

func (r *pluginRouter) remove(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	name := req.PathValue("rest")
	if name == "" {
		return pageNotFound(req)
	}
	if err := r.backend.Remove(req.Context(), name, httputils.BoolValue(req, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
