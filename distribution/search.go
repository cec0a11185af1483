package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
)

// Search asks a registry's v1 search endpoint, as dockerd does: the index is the term's registry host
// when it has one ("localhost:5000/foo" asks localhost:5000 for "foo"), else Docker Hub's index. The
// results are returned as the registry gives them (filtering is the caller's). A registry without the
// v1 search API (docker-registry, most v2 registries) answers 404, which is dockerd's "Unexpected status
// code 404" (class Unknown, a 500 as dockerd); an unreachable one is Unavailable; refused credentials are
// Unauthenticated.
func (s *Service) Search(ctx context.Context, term string, limit int, auth *imagetypes.AuthConfig) ([]imagetypes.SearchResult, error) {
	index, remote := "index.docker.io", term
	if first, rest, ok := strings.Cut(term, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		index, remote = first, rest
		if index == "docker.io" {
			index = "index.docker.io"
		}
	}
	q := url.Values{"q": {remote}, "n": {strconv.Itoa(limit)}}
	u := "https://" + index + "/v1/search?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid search term %q: %v", term, err))
	}
	if auth != nil && (auth.Username != "" || auth.Password != "") {
		req.SetBasicAuth(auth.Username, auth.Password)
	}
	if s.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", s.cfg.UserAgent)
	}
	resp, err := s.clientFor(index).Do(req)
	if err != nil {
		err = classify(err)
		if errdefs.IsUnavailable(err) || errdefs.IsCanceled(err) {
			return nil, err
		}
		return nil, errdefs.ErrUnavailable.WithMessage(err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if class := statusClass(resp.StatusCode); errdefs.IsUnauthorized(class) || errdefs.IsPermissionDenied(class) {
			return nil, responseError(resp)
		}
		return nil, errdefs.ErrUnknown.WithMessage(fmt.Sprintf("Unexpected status code %d", resp.StatusCode))
	}
	var body struct {
		Results []imagetypes.SearchResult `json:"results"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 16<<20)).Decode(&body); err != nil {
		return nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("search %s: invalid answer from %s: %v", term, index, err))
	}
	return body.Results, nil
}
