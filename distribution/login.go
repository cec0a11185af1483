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
	failed := func(err error) (string, error) {
		err = classify(err)
		if isAuthError(err) {
			return "", errdefs.ErrUnauthenticated.WithMessage("login attempt to " + url + " failed: " + err.Error())
		}
		if errdefs.IsCanceled(err) {
			return "", err
		}
		return "", errdefs.ErrUnavailable.WithMessage(err.Error())
	}
	resp, err := do()
	if err != nil {
		return failed(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		if err := authz.AddResponses(ctx, []*http.Response{resp}); err != nil {
			return failed(err)
		}
		resp, err = do()
		if err != nil {
			return failed(err)
		}
		resp.Body.Close()
	}
	// The endpoint dockerd names is the one that answered: http:// when a loopback or insecure
	// registry does not speak TLS.
	endpoint := url
	if resp.Request != nil && resp.Request.URL != nil {
		endpoint = resp.Request.URL.String()
	}
	if resp.StatusCode == http.StatusOK {
		return "Login Succeeded", nil
	}
	msg := fmt.Sprintf("login attempt to %s failed with status: %s", endpoint, resp.Status)
	if class := statusClass(resp.StatusCode); errdefs.IsUnauthorized(class) || errdefs.IsPermissionDenied(class) {
		return "", errdefs.ErrUnauthenticated.WithMessage(msg)
	}
	return "", errdefs.ErrUnavailable.WithMessage(msg)
}
