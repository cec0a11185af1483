package system

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/berthd/berthd/integration/internal/tlstest"
	"github.com/docker/docker/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestMutualTLS(t *testing.T) {
	d := daemon.New(t)
	m := tlstest.NewMutual(t, t.TempDir(), "client")

	port := freePort(t)
	d.Start(t, "-H", "tcp://127.0.0.1:"+port, "--tlsverify", "--tlscacert", m.CA.Cert, "--tlscert", m.Server.Cert, "--tlskey", m.Server.Key)

	c, err := client.NewClientWithOpts(client.WithHost("tcp://127.0.0.1:"+port),
		client.WithTLSClientConfig(m.CA.Cert, m.Client.Cert, m.Client.Key), client.WithAPIVersionNegotiation())
	assert.NilError(t, err)
	defer c.Close()
	v, err := c.ServerVersion(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(v.Platform.Name, "berthd"))

	// Without a client certificate the handshake fails: --tlsverify means mutual TLS.
	pool := x509.NewCertPool()
	pool.AddCert(m.CACert)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	_, err = hc.Get("https://127.0.0.1:" + port + "/_ping")
	assert.Check(t, err != nil, "a client without certificate must be refused")
	// Plain HTTP on the TLS port is not served either.
	resp, err := http.Get("http://127.0.0.1:" + port + "/_ping")
	if err == nil {
		resp.Body.Close()
		assert.Check(t, resp.StatusCode != 200)
	}
}
