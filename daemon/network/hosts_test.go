package network

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestBuildHosts(t *testing.T) {
	gw := []netip.Addr{netip.MustParseAddr("172.17.0.1")}
	ip := netip.MustParseAddr("172.17.0.2")
	for _, tc := range []struct {
		name string
		in   HostsInput
		want string
	}{
		{"own entry", HostsInput{Hostname: "abc", Addrs: []netip.Addr{ip}}, hostsV4 + hostsV6 + "172.17.0.2\tabc\n"},
		{"domain", HostsInput{Hostname: "h", Domainname: "d.org", Addrs: []netip.Addr{ip}, NoIPv6: true}, hostsV4 + "172.17.0.2\th.d.org h\n"},
		{"add-host and gateway", HostsInput{Hostname: "h", ExtraHosts: []string{"db:10.0.0.5", "gw:host-gateway", "v6=[::1]"}, HostGateway: gw},
			hostsV4 + hostsV6 + "10.0.0.5\tdb\n172.17.0.1\tgw\n::1\tv6\n"},
		{"links", HostsInput{Hostname: "h", Addrs: []netip.Addr{ip}, Links: []HostsLink{{IP: netip.MustParseAddr("172.17.0.3"), Alias: "db", Hostname: "0123456789ab", Name: "pg"}}},
			hostsV4 + hostsV6 + "172.17.0.3\tdb 0123456789ab pg\n172.17.0.2\th\n"},
		{"host mode copies", HostsInput{Host: true, HostFile: []byte("1.2.3.4 x\n")}, "1.2.3.4 x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BuildHosts(tc.in)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(string(got), tc.want))
		})
	}
	for in, msg := range map[string]string{
		"gw:host-gateway": "unable to derive the IP value for host-gateway",
		"x:1.2.3":         `invalid IP address in add-host: "1.2.3"`,
		"nocolon":         `bad format for add-host: "nocolon"`,
	} {
		_, err := BuildHosts(HostsInput{ExtraHosts: []string{in}})
		assert.Check(t, is.Error(err, msg))
		assert.Check(t, errdefs.IsInvalidArgument(err))
	}
}

func TestLinkEnv(t *testing.T) {
	got := LinkEnv("/web", "my-db", netip.MustParseAddr("172.17.0.3"), []string{"53/udp", "5432/tcp"}, []string{"PATH=/bin", "HOME=/root", "PGUSER=x"})
	assert.Check(t, is.DeepEqual(got, []string{
		"MY_DB_PORT=tcp://172.17.0.3:5432",
		"MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432", "MY_DB_PORT_5432_TCP_ADDR=172.17.0.3", "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp",
		"MY_DB_PORT_53_UDP=udp://172.17.0.3:53", "MY_DB_PORT_53_UDP_ADDR=172.17.0.3", "MY_DB_PORT_53_UDP_PORT=53", "MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_NAME=/web/my-db", "MY_DB_ENV_PGUSER=x",
	}))
}

func TestEditHosts(t *testing.T) {
	a, b := netip.MustParseAddr("172.18.0.2"), netip.MustParseAddr("172.19.0.5")
	base := hostsV4 + "172.18.0.2\th.d h\n"
	for _, tc := range []struct {
		name     string
		in       string
		add, del []netip.Addr
		want     string
	}{
		{"connect appends", base, []netip.Addr{b}, nil, base + "172.19.0.5\th.d h\n"},
		{"disconnect removes only its line", base + "172.19.0.5\th.d h\n", nil, []netip.Addr{b}, base},
		{"user lines kept", base + "10.0.0.1 mine\n", nil, []netip.Addr{a}, hostsV4 + "10.0.0.1 mine\n"},
		{"missing final newline", hostsV4 + "10.0.0.1 mine", []netip.Addr{b}, nil, hostsV4 + "10.0.0.1 mine\n172.19.0.5\th.d h\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Check(t, is.Equal(string(EditHosts([]byte(tc.in), "h", "d", tc.add, tc.del)), tc.want))
		})
	}
}

// FuzzEditHosts: any file content and address survive a connect then a disconnect: the added line
// is there after the first and gone after the second, every other line kept.
func FuzzEditHosts(f *testing.F) {
	f.Add([]byte(hostsV4+"172.18.0.2\th\n"), "h", "d", []byte{10, 0, 0, 1})
	f.Add([]byte("no newline"), "h", "", []byte{172, 19, 0, 5})
	f.Add([]byte(""), "x", "y.z", []byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, content []byte, host, domain string, ip []byte) {
		if len(ip) != 4 || host == "" || strings.ContainsAny(host+domain, "\n\t ") {
			return
		}
		a := netip.AddrFrom4([4]byte(ip))
		line := hostsEntry(a, host, domain)
		if strings.Contains(string(content), strings.TrimSuffix(line, "\n")) {
			return
		}
		added := EditHosts(content, host, domain, []netip.Addr{a}, nil)
		if !strings.HasSuffix(string(added), line) {
			t.Fatalf("line %q not appended: %q", line, added)
		}
		removed := string(EditHosts(added, host, domain, nil, []netip.Addr{a}))
		if strings.Contains(removed, strings.TrimSuffix(line, "\n")) {
			t.Fatalf("line %q not removed: %q", line, removed)
		}
		want := string(EditHosts(content, host, domain, nil, nil))
		if removed != want {
			t.Fatalf("other lines changed: %q, want %q", removed, want)
		}
	})
}
