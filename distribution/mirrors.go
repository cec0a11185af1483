package distribution

import (
	"net/url"

	"github.com/containerd/containerd/remotes/docker"
	"golang.org/x/sync/semaphore"
)

// maxConcurrentUploads is dockerd's default number of layers pushed at once.
const maxConcurrentUploads = 5

// mirrorHosts are the registry mirrors as pull-only hosts for Docker Hub images, in the configured order;
// containerd's resolver falls through to the next host (finally Docker Hub) when one fails.
func (s *Service) mirrorHosts(authz docker.Authorizer) []docker.RegistryHost {
	var out []docker.RegistryHost
	for _, m := range s.registries().Mirrors {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			continue // validated at start-up
		}
		client := s.http
		if u.Scheme == "https" {
			client = s.clientFor(u.Host)
		}
		out = append(out, docker.RegistryHost{
			Client: client, Authorizer: authz, Host: u.Host, Scheme: u.Scheme, Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		})
	}
	return out
}

// uploadLimiter bounds the blobs pushed at once.
func (s *Service) uploadLimiter() *semaphore.Weighted {
	n := s.registries().MaxConcurrentUploads
	if n <= 0 {
		n = maxConcurrentUploads
	}
	return semaphore.NewWeighted(int64(n))
}

// Registries are the settings SIGHUP may change.
type Registries struct {
	Mirrors, Insecure                            []string
	MaxConcurrentDownloads, MaxConcurrentUploads int
}

// SetRegistries applies reloaded registry settings; pulls and pushes under way keep the ones they began
// with.
func (s *Service) SetRegistries(r Registries) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.cfg.Mirrors, s.cfg.Insecure = r.Mirrors, r.Insecure
	s.cfg.MaxConcurrentDownloads, s.cfg.MaxConcurrentUploads = r.MaxConcurrentDownloads, r.MaxConcurrentUploads
}

func (s *Service) registries() Registries {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	return Registries{Mirrors: s.cfg.Mirrors, Insecure: s.cfg.Insecure,
		MaxConcurrentDownloads: s.cfg.MaxConcurrentDownloads, MaxConcurrentUploads: s.cfg.MaxConcurrentUploads}
}
