package config

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestSecurityKeysLoad(t *testing.T) {
	cfg := New()
	p := writeFile(t, `{"seccomp-profile": "unconfined", "no-new-privileges": true, "authorization-plugins": ["a", "b"]}`)
	assert.NilError(t, LoadFile(cfg, p, true, nil))
	assert.Check(t, is.Equal(cfg.SeccompProfile, "unconfined"))
	assert.Check(t, cfg.NoNewPrivileges)
	assert.Check(t, is.DeepEqual(cfg.AuthorizationPlugins, []string{"a", "b"}))
	assert.NilError(t, cfg.Validate())

	err := LoadFile(New(), p, true, map[string]string{"no-new-privileges": "true"})
	assert.ErrorContains(t, err, "no-new-privileges: (from flag: true, from file: true)")
}

func TestSecurityKeysRefused(t *testing.T) {
	for _, tc := range []struct{ file, err string }{
		{`{"selinux-enabled": true}`, "selinux-enabled: SELinux support is not implemented in berthd"},
		{`{"userns-remap": "default"}`, "userns-remap: user namespace remapping is not implemented in berthd"},
		{`{"authorization-plugins": [""]}`, "authorization-plugins: empty plugin name"},
	} {
		cfg := New()
		err := LoadFile(cfg, writeFile(t, tc.file), true, nil)
		assert.NilError(t, err)
		assert.ErrorContains(t, cfg.Validate(), tc.err)
	}
	cfg := New()
	err := LoadFile(cfg, writeFile(t, `{"selinux-enabled": false}`), true, nil)
	assert.NilError(t, err)
	assert.NilError(t, cfg.Validate())
}

func TestAuthorizationPluginsReload(t *testing.T) {
	cfg := New()
	next := New()
	next.AuthorizationPlugins = []string{"authz"}
	cfg.ApplyReload(next)
	assert.DeepEqual(t, cfg.AuthorizationPlugins, []string{"authz"})
}
