package config

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestBuilderConfig(t *testing.T) {
	cfg := New()
	assert.NilError(t, LoadFile(cfg, writeFile(t, `{"builder": {"GC": {"Enabled": false, "defaultKeepStorage": "10GB", "policy": [
		{"keepStorage": "1GB", "filter": ["unused-for=24h", "type=regular"]},
		{"all": true, "filter": {"type": {"exec.cachemount": true, "regular": false}}}
	]}, "entitlements": {"security-insecure": true}}}`), true, nil))
	assert.NilError(t, cfg.Validate())
	gc := cfg.Builder.GC
	assert.Check(t, gc.Enabled != nil && !*gc.Enabled, "keys match case-insensitively, as in dockerd")
	assert.Check(t, is.Equal(gc.DefaultKeepStorage, "10GB"))
	assert.Assert(t, is.Len(gc.Policy, 2))
	assert.Check(t, is.DeepEqual(gc.Policy[0].Filter, BuilderGCFilter{"unused-for": {"24h"}, "type": {"regular"}}))
	assert.Check(t, is.DeepEqual(gc.Policy[1].Filter, BuilderGCFilter{"type": {"exec.cachemount"}}))
	assert.Check(t, gc.Policy[1].All)
	assert.Check(t, cfg.Builder.Entitlements.NetworkHost == nil)
	assert.Check(t, *cfg.Builder.Entitlements.SecurityInsecure)

	for _, tc := range []struct{ body, err string }{
		{`{"builder": {"gc": {"defaultReservedSpace": "ten"}}}`, `builder.gc.defaultReservedSpace: invalid size "ten"`},
		{`{"builder": {"gc": {"policy": [{"maxUsedSpace": "5 parsecs"}]}}}`, `builder.gc.policy[0].maxUsedSpace: invalid size`},
		{`{"builder": {"gc": {"policy": [{"filter": ["until=soon"]}]}}}`, `builder.gc.policy[0].filter: until expects a duration`},
		{`{"builder": {"gc": {"policy": [{"filter": ["nokey"]}]}}}`, `invalid filter "nokey": expected key=value`},
		{`{"builder": {"gc": {"policy": [{"filter": ["colour=red"]}]}}}`, `builder.gc.policy[0].filter: invalid filter "colour"`},
		{`{"builder": {"history": {}}}`, `builder: unknown field "history"`},
		{`{"builder": {"gc": {"keepBytes": 1}}}`, `builder: unknown field "keepBytes"`},
	} {
		cfg := New()
		err := LoadFile(cfg, writeFile(t, tc.body), true, nil)
		if err == nil {
			err = cfg.Validate()
		}
		assert.Check(t, is.ErrorContains(err, tc.err), tc.body)
	}
	for _, ok := range []string{"10GB", "512MB", "1.5g", "1024", "10%", "2 GiB"} {
		cfg := New()
		assert.NilError(t, LoadFile(cfg, writeFile(t, `{"builder": {"gc": {"defaultReservedSpace": "`+ok+`"}}}`), true, nil))
		assert.Check(t, cfg.Validate(), ok)
	}
}
