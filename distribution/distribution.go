// Package distribution owns talking to registries: resolving, fetching and pushing images through
// containerd's remotes/docker resolver, with registry credentials from X-Registry-Auth, plain HTTP for
// loopback registries (as dockerd allows by default), and progress reported as Docker JSON messages so the
// CLI draws its bars. Content lands in containerd's content store under the caller's lease; naming and
// unpacking are image/service's job. It also inspects remote references (/distribution/{name}/json) and
// searches v1 search indexes. Blobs remember the repositories they came from or went to (containerd's
// distribution-source labels), so pushes mount shared blobs across repositories. Registry errors are
// classified here, where they are born (errors.go), from the HTTP status and the registry's error codes.
//
// It imports containerd and api/types/image; it must not import daemon, api/server or image/service.
package distribution

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"
)

// Config configures registry access.
type Config struct {
	// Namespace is the containerd namespace content is written in.
	Namespace string
	// Insecure lists registries (host[:port]) reached over plain HTTP besides loopback ones.
	Insecure []string
	// UserAgent is sent to registries.
	UserAgent string
	// Mirrors are registry-mirrors (validated URLs): Docker Hub pulls try them in order before Docker Hub.
	Mirrors []string
	// MaxConcurrentDownloads and MaxConcurrentUploads bound the layers moved at once per pull and per
	// push (dockerd's 3 and 5 when zero).
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int
}

// Service pulls and pushes.
type Service struct {
	client *containerd.Client
	cfg    Config
	// regMu guards the registry settings in cfg that a reload changes (mirrors.go).
	regMu sync.RWMutex
	http  *http.Client
	// insecure talks to loopback and configured insecure registries as dockerd does: HTTPS without
	// certificate verification first, plain HTTP when the other end does not speak TLS.
	insecure *http.Client
}

// New returns a Service writing into client's content store.
func New(client *containerd.Client, cfg Config) *Service {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = 60 * time.Second
	itr := tr.Clone()
	itr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // insecure registries, as dockerd
	return &Service{client: client, cfg: cfg, http: &http.Client{Transport: tr},
		insecure: &http.Client{Transport: docker.NewHTTPFallback(itr)}}
}

// clientFor is the HTTP client for a registry host.
func (s *Service) clientFor(host string) *http.Client {
	if ok, _ := s.plainHTTP(host); ok {
		return s.insecure
	}
	return s.http
}

// hosts resolves a registry name to its endpoint: HTTPS, with the insecure client for loopback and
// configured insecure registries, Docker Hub at registry-1.docker.io.
func (s *Service) hosts(authz docker.Authorizer) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		h := docker.RegistryHost{
			Client: s.clientFor(host), Authorizer: authz, Host: host, Scheme: "https", Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush,
		}
		if host != "docker.io" {
			return []docker.RegistryHost{h}, nil
		}
		h.Host = "registry-1.docker.io"
		return append(s.mirrorHosts(authz), h), nil
	}
}

// ProgressFunc receives each progress message; it must not block for long.
type ProgressFunc func(imagetypes.JSONMessage)

func (s *Service) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, s.cfg.Namespace)
}

// plainHTTP reports whether host is reached without TLS: loopback addresses and names, and configured
// insecure registries.
func (s *Service) plainHTTP(host string) (bool, error) {
	for _, h := range s.registries().Insecure {
		if h == host {
			return true, nil
		}
	}
	hn := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hn = h
	}
	hn = strings.Trim(hn, "[]")
	if hn == "localhost" {
		return true, nil
	}
	if ip := net.ParseIP(hn); ip != nil && ip.IsLoopback() {
		return true, nil
	}
	return false, nil
}

func (s *Service) resolver(auth *imagetypes.AuthConfig) remotes.Resolver {
	return s.resolverWith(auth, nil)
}

// resolverWith is resolver with the status tracker given (nil: the resolver's own), which is where a push
// learns that a blob was mounted rather than uploaded.
func (s *Service) resolverWith(auth *imagetypes.AuthConfig, tracker docker.StatusTracker) remotes.Resolver {
	creds := func(host string) (string, string, error) {
		if auth == nil {
			return "", "", nil
		}
		if auth.IdentityToken != "" {
			return "", auth.IdentityToken, nil
		}
		user, pass := auth.Username, auth.Password
		if user == "" && auth.Auth != "" {
			if b, err := base64.StdEncoding.DecodeString(auth.Auth); err == nil {
				user, pass, _ = strings.Cut(string(b), ":")
			}
		}
		return user, pass, nil
	}
	authz := docker.NewDockerAuthorizer(docker.WithAuthClient(s.http), docker.WithAuthCreds(creds))
	hdr := http.Header{}
	if s.cfg.UserAgent != "" {
		hdr.Set("User-Agent", s.cfg.UserAgent)
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: s.hosts(authz), Headers: hdr, Tracker: tracker})
}

// familiar is the short form of a reference for messages.
func familiar(n reference.Named) string { return reference.FamiliarString(n) }

func shortID(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 {
		d = d[i+1:]
	}
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}
