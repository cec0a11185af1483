package network

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestBuildResolvConf(t *testing.T) {
	const hdr = resolvHeader
	host := []byte("# comment\nnameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver fd00::1\nsearch example.com corp\noptions edns0\n")
	loopOnly := []byte("nameserver 127.0.0.1\n")
	for _, tc := range []struct {
		name string
		in   ResolvInput
		want string
		ups  []string
	}{
		{"legacy filters loopback and v6", ResolvInput{Mode: Legacy, Host: host, HostPath: "/etc/resolv.conf"},
			hdr + "nameserver 10.0.0.2\nsearch example.com corp\noptions edns0\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: []\n", nil},
		{"legacy keeps v6 with ipv6", ResolvInput{Mode: Legacy, Host: host, HostPath: "/etc/resolv.conf", IPv6: true},
			hdr + "nameserver 10.0.0.2\nnameserver fd00::1\nsearch example.com corp\noptions edns0\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: []\n", nil},
		{"legacy falls back to public servers", ResolvInput{Mode: Legacy, Host: loopOnly, HostPath: "/etc/resolv.conf"},
			hdr + "nameserver 8.8.8.8\nnameserver 8.8.4.4\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Used default nameservers.\n# Overrides: []\n", nil},
		{"legacy --dns is not filtered", ResolvInput{Mode: Legacy, Host: host, HostPath: "/etc/resolv.conf", DNS: []string{"127.0.0.5"}, Search: []string{"a.b"}, Options: []string{"ndots:2"}},
			hdr + "nameserver 127.0.0.5\nsearch a.b\noptions ndots:2\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: [nameservers search options]\n", nil},
		{"internal", ResolvInput{Mode: Internal, Host: host, HostPath: "/etc/resolv.conf"},
			hdr + "nameserver 127.0.0.11\nsearch example.com corp\noptions edns0 ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(127.0.0.1) host(10.0.0.2) host(fd00::1)]\n# Overrides: []\n# Option ndots from: internal\n",
			[]string{"127.0.0.1", "10.0.0.2", "fd00::1"}},
		{"internal with --dns and ndots", ResolvInput{Mode: Internal, Host: host, HostPath: "/etc/resolv.conf", DNS: []string{"10.9.9.9"}, Options: []string{"ndots:3"}},
			hdr + "nameserver 127.0.0.11\nsearch example.com corp\noptions ndots:3\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [10.9.9.9]\n# Overrides: [nameservers options]\n# Option ndots from: --dns-option\n",
			[]string{"10.9.9.9"}},
		{"internal without servers", ResolvInput{Mode: Internal, HostPath: "/etc/resolv.conf", Search: []string{"."}},
			hdr + "nameserver 127.0.0.11\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# NO EXTERNAL NAMESERVERS DEFINED\n# Overrides: [search]\n# Option ndots from: internal\n", nil},
		{"host keeps loopback", ResolvInput{Mode: HostFile, Host: loopOnly, HostPath: "/etc/resolv.conf"},
			hdr + "nameserver 127.0.0.1\n\n# Based on host file: '/etc/resolv.conf'\n# Overrides: []\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ups := BuildResolvConf(tc.in)
			assert.Check(t, is.Equal(string(got), tc.want))
			assert.Check(t, is.DeepEqual(ups, tc.ups))
		})
	}
}

// A starting container's resolv.conf follows new settings unless the user edited it (the stored hash
// no longer matches); a file without a hash is regenerated.
func TestRefreshResolvConf(t *testing.T) {
	dir := t.TempDir()
	cfg := FilesConfig{Hostname: "h", Mode: "app", DNS: []string{"10.0.0.1"}}
	assert.NilError(t, WriteFiles(dir, cfg))
	read := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "resolv.conf"))
		assert.NilError(t, err)
		return string(b)
	}
	assert.Check(t, is.Contains(read(), "# ExtServers: [10.0.0.1]"))

	cfg.DNS = []string{"10.0.0.2"}
	assert.NilError(t, RefreshResolvConf(dir, cfg))
	assert.Check(t, is.Contains(read(), "# ExtServers: [10.0.0.2]"))

	assert.NilError(t, os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 10.9.9.9\n"), 0o644))
	cfg.DNS = []string{"10.0.0.3"}
	assert.NilError(t, RefreshResolvConf(dir, cfg))
	assert.Check(t, is.Equal(read(), "nameserver 10.9.9.9\n"))

	assert.NilError(t, os.Remove(filepath.Join(dir, resolvHashFile)))
	assert.NilError(t, RefreshResolvConf(dir, cfg))
	assert.Check(t, is.Contains(read(), "# ExtServers: [10.0.0.3]"))
}
