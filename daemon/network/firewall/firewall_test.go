package firewall

import (
	"net/netip"
	"testing"

	"gotest.tools/v3/assert"
)

func TestEndpointBatchLayout(t *testing.T) {
	e := Endpoint{Bridge: "br-dummy", IP: netip.MustParseAddr("192.168.0.2"), Ports: []Port{
		{Proto: "tcp", HostIP: netip.IPv4Unspecified(), HostPort: 8080, ContainerPort: 80},
		{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53},
	}}
	assert.Equal(t, Batch(e, true), `*raw
-A PREROUTING -d 192.168.0.2/32 ! -i br-dummy -j DROP
-A PREROUTING -d 127.0.0.1/32 ! -i lo -p udp -m udp --dport 5353 -j DROP
COMMIT
*filter
-I DOCKER -d 192.168.0.2/32 ! -i br-dummy -o br-dummy -p tcp -m tcp --dport 80 -j ACCEPT
-I DOCKER -d 192.168.0.2/32 ! -i br-dummy -o br-dummy -p udp -m udp --dport 53 -j ACCEPT
COMMIT
*nat
-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 192.168.0.2:80
-A POSTROUTING -s 192.168.0.2/32 -d 192.168.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 192.168.0.2:53
-A POSTROUTING -s 192.168.0.2/32 -d 192.168.0.2/32 -p udp -m udp --dport 53 -j MASQUERADE
COMMIT
`)
}

func TestNetworkRulesInternal(t *testing.T) {
	n := Network{Bridge: "br-x", Subnet: netip.MustParsePrefix("10.0.0.0/24"), Internal: true, ICC: true}
	var got []string
	for _, r := range n.rules() {
		got = append(got, r.table+" "+r.chain)
	}
	// Internal networks have no NAT and no DOCKER chain rules: only isolation and ICC.
	assert.DeepEqual(t, got, []string{"filter DOCKER-ISOLATION-STAGE-1", "filter DOCKER-ISOLATION-STAGE-1", "filter DOCKER-FORWARD"})
}
