package distribution

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
)

// Login checks credentials against a registry's /v2/ endpoint, as `docker login` asks the daemon to. It
// answers dockerd's "Login Succeeded"; refused credentials are Unauthenticated (401), an unreachable
// registry Unavailable.
func (s *Service) Login(ctx context.Context, auth *imagetypes.AuthConfig) (string, error) {
	host := auth.ServerAddress
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	if host == "" || host == "index.docker.io" {
		host = "registry-1.docker.io"
	}
	hc := s.clientFor(host)
	url := "https://" + host + "/v2/"
	authz := docker.NewDockerAuthorizer(docker.WithAuthClient(s.http), docker.WithAuthCreds(func(string) (string, string, error) {
		if auth.IdentityToken != "" {
			return "", auth.IdentityToken, nil
		}
		return auth.Username, auth.Password, nil
	}))
	do := func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if err := authz.Authorize(ctx, req); err != nil {
			return nil, err
		}
		return hc.Do(req)
	}
	resp, err := do()
	if err != nil {
		return "", errdefs.ErrUnavailable.WithMessage(err.Error())
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		if err := authz.AddResponses(ctx, []*http.Response{resp}); err != nil {
			return "", errdefs.ErrUnauthenticated.WithMessage("login attempt to " + url + " failed: " + err.Error())
		}
		resp, err = do()
		if err != nil {
			if strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "unauthorized") {
				return "", errdefs.ErrUnauthenticated.WithMessage("login attempt to " + url + " failed: " + err.Error())
			}
			return "", errdefs.ErrUnavailable.WithMessage(err.Error())
		}
		resp.Body.Close()
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return "Login Succeeded", nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return "", errdefs.ErrUnauthenticated.WithMessage(fmt.Sprintf("login attempt to %s failed with status: %s", url, resp.Status))
	}
	return "", errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("login attempt to %s failed with status: %s", url, resp.Status))
}
