package image

import (
	"net/http"
	"strings"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/api/types/versions"
)

func (r *imageRouter) postImagesCreate(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	var (
		fromImage = req.Form.Get("fromImage")
		fromSrc   = req.Form.Get("fromSrc")
		repo      = req.Form.Get("repo")
		tag       = req.Form.Get("tag")
		platform  = req.Form.Get("platform")
		st        = httputils.NewProgressStream(w)
	)
	switch {
	case fromImage != "":
		err := r.backend.PullImage(req.Context(), fromImage, tag, platform, httputils.RegistryAuth(req), st.Send)
		return st.Finish(err)
	case fromSrc != "":
		_, err := r.backend.ImportImage(req.Context(), req.Body, fromSrc, repo, tag, req.Form.Get("message"), req.Form["changes"], platform, st.Send)
		return st.Finish(err)
	}
	return httputils.InvalidParameter("fromImage or fromSrc is required")
}

func (r *imageRouter) postImagesLoad(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	st := httputils.NewProgressStream(w)
	err := r.backend.LoadImage(req.Context(), req.Body, httputils.BoolValue(req, "quiet"), st.Send)
	return st.Finish(err)
}

// lazyWriter commits the tar response only with the first byte.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-tar")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

func (r *imageRouter) export(w http.ResponseWriter, req *http.Request, names []string) error {
	lw := &lazyWriter{w: w}
	err := r.backend.ExportImages(req.Context(), names, lw)
	if err != nil && lw.started {
		// The archive is cut short; the client sees a truncated tar. Nothing else can be said now.
		return nil
	}
	if err == nil && !lw.started {
		lw.Write(nil)
	}
	return err
}

func (r *imageRouter) getImagesGet(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	return r.export(w, req, req.Form["names"])
}

func (r *imageRouter) getImageGet(w http.ResponseWriter, req *http.Request, name string) error {
	return r.export(w, req, []string{name})
}

func (r *imageRouter) getImagesJSON(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	// API < 1.41 took a bare "filter" as a reference filter.
	if v := req.Form.Get("filter"); v != "" {
		f.Add("reference", v)
	}
	version := httputils.VersionFromContext(req.Context())
	opts := image.ListOptions{All: httputils.BoolValue(req, "all"), Filters: f}
	if versions.GreaterThanOrEqualTo(version, "1.42") {
		opts.SharedSize = httputils.BoolValue(req, "shared-size")
	}
	list, err := r.backend.Images(req.Context(), opts)
	if err != nil {
		return err
	}
	if versions.LessThan(version, "1.44") {
		for _, s := range list {
			s.VirtualSize = s.Size
		}
	}
	if list == nil {
		list = []*image.Summary{}
	}
	return httputils.WriteJSON(w, http.StatusOK, list)
}

func (r *imageRouter) getImagesByName(w http.ResponseWriter, req *http.Request, name string) error {
	resp, err := r.backend.ImageInspect(req.Context(), name)
	if err != nil {
		return err
	}
	if versions.LessThan(httputils.VersionFromContext(req.Context()), "1.44") {
		resp.VirtualSize = resp.Size
	}
	return httputils.WriteJSON(w, http.StatusOK, resp)
}

func (r *imageRouter) getImagesHistory(w http.ResponseWriter, req *http.Request, name string) error {
	h, err := r.backend.ImageHistory(req.Context(), name)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, h)
}

func (r *imageRouter) postImagesTag(w http.ResponseWriter, req *http.Request, name string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	if err := r.backend.TagImage(req.Context(), name, req.Form.Get("repo"), req.Form.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (r *imageRouter) postImagesPush(w http.ResponseWriter, req *http.Request, name string) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	st := httputils.NewProgressStream(w)
	err := r.backend.PushImage(req.Context(), name, req.Form.Get("tag"), httputils.RegistryAuth(req), st.Send)
	return st.Finish(err)
}

func (r *imageRouter) deleteImages(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	name := req.PathValue("rest")
	if strings.TrimSpace(name) == "" {
		return httputils.InvalidParameter("image name cannot be blank")
	}
	res, err := r.backend.ImageDelete(req.Context(), name, httputils.BoolValue(req, "force"), !httputils.BoolValue(req, "noprune"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, res)
}

func (r *imageRouter) postImagesPrune(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := r.backend.ImagesPrune(req.Context(), f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

func (r *imageRouter) postAuth(w http.ResponseWriter, req *http.Request) error {
	var auth image.AuthConfig
	if err := httputils.ReadJSON(req, &auth); err != nil {
		if httputils.IsEOF(err) {
			return httputils.InvalidParameter("no credentials given")
		}
		return err
	}
	resp, err := r.backend.AuthenticateToRegistry(req.Context(), &auth)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, resp)
}
