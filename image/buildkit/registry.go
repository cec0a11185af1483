package buildkit

import (
	"net"
	"strings"

	resolverconfig "github.com/moby/buildkit/util/resolver/config"
)

// registryConfig turns berthd's registry options into BuildKit's resolver configuration, so that a build
// reaches registries as `docker pull` and `docker push` do: an insecure registry is tried over HTTPS
// without verification, then plain HTTP; Docker Hub goes through the mirrors first. Loopback registries
// use plain HTTP without configuration (BuildKit's default, as berthd's). CIDR entries of
// insecure-registries have no BuildKit equivalent (it matches host names) and are left out.
func registryConfig(insecure, mirrors []string) map[string]resolverconfig.RegistryConfig {
	m := map[string]resolverconfig.RegistryConfig{}
	yes := true
	for _, h := range insecure {
		if _, _, err := net.ParseCIDR(h); err == nil || h == "" {
			continue
		}
		m[h] = resolverconfig.RegistryConfig{Insecure: &yes, PlainHTTP: &yes}
	}
	var hub []string
	for _, u := range mirrors {
		host := strings.TrimSuffix(u, "/")
		switch {
		case strings.HasPrefix(host, "http://"):
			host = strings.TrimPrefix(host, "http://")
			if _, ok := m[hostOnly(host)]; !ok {
				m[hostOnly(host)] = resolverconfig.RegistryConfig{PlainHTTP: &yes}
			}
		case strings.HasPrefix(host, "https://"):
			host = strings.TrimPrefix(host, "https://")
		}
		if host != "" {
			hub = append(hub, host)
		}
	}
	if len(hub) > 0 {
		c := m["docker.io"]
		c.Mirrors = hub
		m["docker.io"] = c
	}
	return m
}

// hostOnly is a mirror's host[:port] without its path.
func hostOnly(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}
