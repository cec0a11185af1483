package network

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// --host-gateway-ip (daemon.json host-gateway-ip) is what --add-host name:host-gateway maps to; without it,
// the default bridge's gateway.
func TestHostGatewayIP(t *testing.T) {
	d := newDaemon(t, "--host-gateway-ip", "10.9.8.7")
	hosts := mustDocker(t, d, "run", "--rm", "--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts")
	assert.Check(t, is.Contains(hosts, "10.9.8.7\tgw"), hosts)

	plain := newDaemon(t)
	hosts = mustDocker(t, plain, "run", "--rm", "--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts")
	assert.Check(t, strings.Contains(hosts, "172.17.0.1\tgw"), hosts)

	res := d.Docker(t, "info") // the daemon stays up; a bad value is refused at start instead
	assert.Equal(t, res.ExitCode, 0, res.Combined())
}
