package image

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/image"
)

// defaultSearchLimit is dockerd's limit when the client sends none.
const defaultSearchLimit = 25

func (r *imageRouter) getImagesSearch(w http.ResponseWriter, req *http.Request) error {
	if err := httputils.ParseForm(req); err != nil {
		return err
	}
	opts := image.SearchOptions{Term: req.Form.Get("term"), Limit: defaultSearchLimit}
	if v := req.Form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return httputils.InvalidParameter("invalid limit " + strconv.Quote(v) + ": not an integer")
		}
		opts.Limit = n
	}
	f, err := filters.FromJSON(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	opts.Filters = f
	res, err := r.backend.SearchImages(req.Context(), opts, httputils.RegistryAuth(req))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, res)
}

// getDistributionInfo is GET /distribution/{name}/json; names contain slashes, so the route is a
// wildcard whose last element must be "json".
func (r *imageRouter) getDistributionInfo(w http.ResponseWriter, req *http.Request) error {
	name, ok := strings.CutSuffix(req.PathValue("rest"), "/json")
	if !ok || name == "" {
		return httputils.NotFound("page not found")
	}
	res, err := r.backend.DistributionInspect(req.Context(), name, httputils.RegistryAuth(req))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, res)
}
