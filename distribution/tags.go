package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// Tags lists a repository's tags (`docker pull --all-tags`), through the same hosts, plain-HTTP rule and
// credentials as pulls.
func (s *Service) Tags(ctx context.Context, repo reference.Named, auth *imagetypes.AuthConfig) ([]string, error) {
	host := reference.Domain(repo)
	hosts, err := s.hosts(nil)(host)
	if err != nil || len(hosts) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no registry host for " + host)
	}
	h := hosts[0]
	url := fmt.Sprintf("%s://%s%s/%s/tags/list", h.Scheme, h.Host, h.Path, reference.Path(repo))
	authz := docker.NewDockerAuthorizer(docker.WithAuthClient(s.http), docker.WithAuthCreds(func(string) (string, string, error) {
		if auth == nil {
			return "", "", nil
		}
		if auth.IdentityToken != "" {
			return "", auth.IdentityToken, nil
		}
		return auth.Username, auth.Password, nil
	}))
	get := func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if err := authz.Authorize(ctx, req); err != nil {
			return nil, err
		}
		return h.Client.Do(req)
	}
	resp, err := get()
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		if aerr := authz.AddResponses(ctx, []*http.Response{resp}); aerr == nil {
			resp, err = get()
		}
	}
	if err != nil {
		return nil, pullError(repo, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errdefs.ErrNotFound.WithMessage("repository " + reference.FamiliarName(repo) + " not found: does not exist or no pull access")
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, errdefs.ErrNotFound.WithMessage("pull access denied for " + reference.FamiliarName(repo) + ", repository does not exist or may require 'docker login'")
	case resp.StatusCode != http.StatusOK:
		return nil, errdefs.ErrUnavailable.WithMessage("list tags of " + reference.FamiliarName(repo) + ": " + resp.Status)
	}
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, errdefs.ErrUnavailable.WithMessage("list tags of " + reference.FamiliarName(repo) + ": " + err.Error())
	}
	sort.Strings(body.Tags)
	return body.Tags, nil
}
