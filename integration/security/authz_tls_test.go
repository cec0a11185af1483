package security

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/berthd/berthd/integration/internal/tlstest"
	"github.com/docker/docker/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestAuthzTLSUser: over mutual TLS, plugins learn who is asking (the client certificate's CN), as with
// dockerd.
func TestAuthzTLSUser(t *testing.T) {
	d := daemon.New(t)
	pl := startAuthzPlugin(t, filepath.Join(d.PluginSocketDir, "authz.sock"))
	m := tlstest.NewMutual(t, t.TempDir(), "alice")

	port := freePort(t)
	d.Start(t, "-H", "tcp://127.0.0.1:"+port, "--tlsverify", "--tlscacert", m.CA.Cert, "--tlscert", m.Server.Cert,
		"--tlskey", m.Server.Key, "--authorization-plugin", "authz")
	c, err := client.NewClientWithOpts(client.WithHost("tcp://127.0.0.1:"+port),
		client.WithTLSClientConfig(m.CA.Cert, m.Client.Cert, m.Client.Key), client.WithAPIVersionNegotiation())
	assert.NilError(t, err)
	defer c.Close()
	_, err = c.ServerVersion(context.Background())
	assert.NilError(t, err)
	found := false
	for _, r := range pl.pol.requests() {
		if r.User == "alice" {
			found = true
			assert.Check(t, is.Equal(r.UserAuthNMethod, "TLS"))
			assert.Check(t, is.Len(r.RequestPeerCertificates, 1))
		}
	}
	assert.Check(t, found, "no request reached the plugin as user alice")
}
