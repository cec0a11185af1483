package config

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestHostGatewayIPKey(t *testing.T) {
	cfg := New()
	assert.NilError(t, LoadFile(cfg, writeFile(t, `{"host-gateway-ip": "10.9.8.7"}`), true, nil))
	assert.Check(t, is.Equal(cfg.HostGatewayIP, "10.9.8.7"))
	assert.NilError(t, cfg.Validate())

	cfg = New()
	assert.NilError(t, LoadFile(cfg, writeFile(t, `{"host-gateway-ip": "not-an-ip"}`), true, nil))
	assert.Check(t, is.ErrorContains(cfg.Validate(), "invalid host-gateway-ip: not-an-ip"))
}
