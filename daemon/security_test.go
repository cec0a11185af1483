package daemon

import (
	"strings"
	"testing"

	"github.com/berthd/berthd/daemon/config"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestAPIWarnings(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		cfg  config.Config
		want []string
	}{
		{cfg: config.Config{Hosts: []string{"unix:///x.sock"}}},
		{cfg: config.Config{Hosts: []string{"tcp://0.0.0.0:2375"}, TLS: &no}, want: []string{"WARNING: API is accessible on http://0.0.0.0:2375 without encryption."}},
		{cfg: config.Config{Hosts: []string{"tcp://0.0.0.0:2376"}, TLS: &yes}, want: []string{"WARNING: API is accessible on https://0.0.0.0:2376 without TLS client verification."}},
		{cfg: config.Config{Hosts: []string{"tcp://0.0.0.0:2376"}, TLSVerify: &yes}},
	} {
		got := apiWarnings(&tc.cfg)
		assert.Assert(t, is.Len(got, len(tc.want)), "%v", tc.cfg.Hosts)
		for i, w := range tc.want {
			assert.Check(t, strings.HasPrefix(got[i], w), got[i])
			assert.Check(t, is.Contains(got[i], "equivalent to root access on the host"))
		}
	}
}

func TestContainerSecurityOptions(t *testing.T) {
	cfg := config.New()
	_, opts, _, err := containerSecurity(cfg)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(opts, []string{"name=seccomp,profile=builtin"}))

	cfg.NoNewPrivileges = true
	cfg.SeccompProfile = config.SeccompProfileUnconfined
	sc, opts, _, err := containerSecurity(cfg)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(opts, []string{"name=seccomp,profile=unconfined", "name=no-new-privileges"}))
	assert.Check(t, sc.NoNewPrivileges)
	assert.Check(t, is.Equal(sc.SeccompProfile, "unconfined"))
}
