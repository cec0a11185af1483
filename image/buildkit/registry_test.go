package buildkit

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestRegistryConfig(t *testing.T) {
	m := registryConfig([]string{"reg.example:5000", "10.0.0.0/8", ""}, []string{"https://mirror.example/", "http://plain.example:5000/hub"})
	assert.Check(t, is.Len(m, 3))
	r := m["reg.example:5000"]
	assert.Check(t, r.Insecure != nil && *r.Insecure)
	assert.Check(t, r.PlainHTTP != nil && *r.PlainHTTP)
	assert.Check(t, is.DeepEqual(m["docker.io"].Mirrors, []string{"mirror.example", "plain.example:5000/hub"}))
	p := m["plain.example:5000"]
	assert.Check(t, p.PlainHTTP != nil && *p.PlainHTTP)
	assert.Check(t, p.Insecure == nil)

	assert.Check(t, is.Len(registryConfig(nil, nil), 0))
}
