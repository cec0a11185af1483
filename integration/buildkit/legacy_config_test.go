package buildkit

import (
	"net/http"
	"os"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func pingBuilderVersion(t *testing.T, d *daemon.Daemon) string {
	t.Helper()
	resp, err := d.HTTPClient().Get("http://d/_ping")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	return resp.Header.Get("Builder-Version")
}

// TestLegacyBuilderConfig: daemon.json's builder (gc policy, entitlements) and features.buildkit.
func TestLegacyBuilderConfig(t *testing.T) {
	t.Run("gc policy and entitlements", func(t *testing.T) {
		d := daemon.New(t)
		assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{
			"features": {"buildkit": true, "containerd-snapshotter": true},
			"builder": {
				"gc": {"enabled": true, "defaultKeepStorage": "20GB", "policy": [
					{"keepStorage": "10GB", "filter": ["unused-for=2200h"]},
					{"reservedSpace": "1GB", "maxUsedSpace": "50GB", "minFreeSpace": "10%", "filter": {"type": {"exec.cachemount": true}}},
					{"keepStorage": "50GB", "all": true}
				]},
				"entitlements": {"network-host": false}
			}
		}`), 0o600))
		d.Start(t)
		assert.Check(t, is.Equal(pingBuilderVersion(t, d), "2"))
		status, body := d.Request(t, "POST", "/build?version=2&networkmode=host&session=x&remote=client-session", "application/x-tar", "")
		assert.Check(t, is.Equal(status, http.StatusForbidden), body)
		assert.Check(t, is.Contains(body, "network.host is not allowed"))
	})

	t.Run("buildkit off", func(t *testing.T) {
		d := daemon.New(t)
		assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"features": {"buildkit": false}}`), 0o600))
		d.Start(t)
		assert.Check(t, is.Equal(pingBuilderVersion(t, d), "1"))
		status, body := d.Request(t, "POST", "/build?version=2", "application/x-tar", "")
		assert.Check(t, is.Equal(status, http.StatusNotImplemented), body)
		assert.Check(t, is.Contains(body, "features.buildkit=false"))
	})

	for _, tc := range []struct{ name, config, want string }{
		{"bad size", `{"builder": {"gc": {"defaultKeepStorage": "lots"}}}`, `builder.gc.defaultKeepStorage: invalid size "lots"`},
		{"bad policy size", `{"builder": {"gc": {"policy": [{"keepStorage": "1XB"}]}}}`, `builder.gc.policy[0].keepStorage: invalid size "1XB"`},
		{"bad filter", `{"builder": {"gc": {"policy": [{"filter": ["colour=red"]}]}}}`, `builder.gc.policy[0].filter: invalid filter "colour"`},
		{"unknown key", `{"builder": {"history": {"maxAge": "48h"}}}`, `builder: unknown field "history"`},
		{"unknown feature", `{"features": {"cdi": true}}`, `features: berthd does not support cdi=true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := daemon.New(t)
			assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(tc.config), 0o600))
			err := d.StartWithError("-H", d.Host())
			assert.Check(t, err != nil)
			assert.Check(t, is.Contains(d.Log(), tc.want))
		})
	}
}
