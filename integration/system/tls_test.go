package system

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type pair struct{ cert, key string }

// writeCert signs a certificate with parent (self-signed when parent is nil) and writes PEM files.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (pair, *x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	assert.NilError(t, err)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	assert.NilError(t, err)
	cert, err := x509.ParseCertificate(der)
	assert.NilError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	assert.NilError(t, err)
	p := pair{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
	assert.NilError(t, os.WriteFile(p.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	assert.NilError(t, os.WriteFile(p.key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return p, cert, key
}

func TestMutualTLS(t *testing.T) {
	d := daemon.New(t)
	dir := t.TempDir()
	now := time.Now()
	ca, caCert, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	srv, _, _ := writeCert(t, dir, "server", &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "berthd"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, caKey)
	cli, _, _ := writeCert(t, dir, "client", &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "client"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, caKey)

	port := freePort(t)
	d.Start(t, "-H", "tcp://127.0.0.1:"+port, "--tlsverify", "--tlscacert", ca.cert, "--tlscert", srv.cert, "--tlskey", srv.key)

	c, err := client.NewClientWithOpts(client.WithHost("tcp://127.0.0.1:"+port),
		client.WithTLSClientConfig(ca.cert, cli.cert, cli.key), client.WithAPIVersionNegotiation())
	assert.NilError(t, err)
	defer c.Close()
	v, err := c.ServerVersion(context.Background())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(v.Platform.Name, "berthd"))

	// Without a client certificate the handshake fails: --tlsverify means mutual TLS.
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
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
