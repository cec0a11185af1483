// Package tlstest writes the certificates of a mutual-TLS set-up for integration tests: a CA, a server
// certificate for 127.0.0.1 and a client certificate, all signed by the CA, as PEM files.
package tlstest

import (
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
)

// Pair is the paths of a certificate and its key.
type Pair struct{ Cert, Key string }

// Mutual is a CA with a server and a client certificate it signed.
type Mutual struct {
	CA, Server, Client Pair
	// CACert is the parsed CA certificate, for a client's pool of roots.
	CACert *x509.Certificate
}

// NewMutual writes ca, server (for 127.0.0.1, CN berthd) and client (CN clientCN) certificates and keys
// into dir, valid from an hour ago to an hour from now.
func NewMutual(t testing.TB, dir, clientCN string) Mutual {
	t.Helper()
	now := time.Now()
	var m Mutual
	var caKey *ecdsa.PrivateKey
	m.CA, m.CACert, caKey = sign(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	m.Server, _, _ = sign(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "berthd"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}, m.CACert, caKey)
	m.Client, _, _ = sign(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3),
		Subject: pkix.Name{CommonName: clientCN}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, m.CACert, caKey)
	return m
}

// sign signs tmpl with parent (self-signed when nil) and writes name.pem and name-key.pem into dir.
func sign(t testing.TB, dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (Pair, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	check(t, err)
	cert, err := x509.ParseCertificate(der)
	check(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	check(t, err)
	p := Pair{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
	check(t, os.WriteFile(p.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	check(t, os.WriteFile(p.Key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return p, cert, key
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
