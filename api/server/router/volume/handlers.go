package volume

import (
	"net/http"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/versions"
	"github.com/berthd/berthd/api/types/volume"
)

func (r *volumeRouter) getVolumesList(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	vols, warnings, err := r.backend.List(req.Context(), f)
	if err != nil {
		return err
	}
	if vols == nil {
		vols = []*volume.Volume{}
	}
	return writeList(w, &volume.ListResponse{Volumes: vols, Warnings: warnings})
}

func (r *volumeRouter) getVolumeByName(w http.ResponseWriter, req *http.Request) error {
	v, err := r.backend.Inspect(req.Context(), req.PathValue("name"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, v)
}

// decodeCreateRequest reads the create body; an empty body is an anonymous volume with defaults.
func decodeCreateRequest(req *http.Request) (volume.CreateOptions, error) {
	var opts volume.CreateOptions
	if err := httputils.ReadJSON(req, &opts); err != nil && !httputils.IsEOF(err) {
		return volume.CreateOptions{}, err
	}
	return opts, nil
}

func (r *volumeRouter) postVolumesCreate(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	opts, err := decodeCreateRequest(req)
	if err != nil {
		return err
	}
	v, err := r.backend.CreateVolume(req.Context(), opts)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, v)
}

func (r *volumeRouter) deleteVolumes(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	force := httputils.BoolValue(req, "force")
	if err := r.backend.RemoveVolume(req.Context(), req.PathValue("name"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *volumeRouter) postVolumesPrune(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	// API < 1.42 clients expect every unused volume pruned, named ones too.
	if v := httputils.VersionFromContext(req.Context()); v != "" && versions.LessThan(v, "1.42") {
		for _, v := range f.Get("all") {
			f.Del("all", v)
		}
		f.Add("all", "true")
	}
	rep, err := r.backend.Prune(req.Context(), f)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}
