package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type certPair struct{ cert, key string }

// signCert signs tmpl with parent (self-signed when nil) and writes PEM files into dir.
func signCert(t *testing.T, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (certPair, *x509.Certificate, *ecdsa.PrivateKey) {
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
	p := certPair{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
	assert.NilError(t, os.WriteFile(p.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	assert.NilError(t, os.WriteFile(p.key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return p, cert, key
}

// TestAuthzTLSUser: over mutual TLS, plugins learn who is asking (the client certificate's CN), as with
// dockerd.
func TestAuthzTLSUser(t *testing.T) {
	d := daemon.New(t)
	pl := startAuthzPlugin(t, filepath.Join(d.PluginSocketDir, "authz.sock"))
	dir := t.TempDir()
	now := time.Now()
	ca, caCert, caKey := signCert(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	srv, _, _ := signCert(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "berthd"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)
	cli, _, _ := signCert(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3),
		Subject: pkix.Name{CommonName: "alice"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, caKey)

	port := freePort(t)
	d.Start(t, "-H", "tcp://127.0.0.1:"+port, "--tlsverify", "--tlscacert", ca.cert, "--tlscert", srv.cert,
		"--tlskey", srv.key, "--authorization-plugin", "authz")
	c, err := client.NewClientWithOpts(client.WithHost("tcp://127.0.0.1:"+port),
		client.WithTLSClientConfig(ca.cert, cli.cert, cli.key), client.WithAPIVersionNegotiation())
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
