package main

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
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthd/berthd/daemon/config"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// writeSelfSigned writes name.pem and name-key.pem (a self-signed CA-capable certificate) into dir.
func writeSelfSigned(t *testing.T, dir, cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	assert.NilError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	assert.NilError(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, cert), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, key), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
}

func TestServerTLSRequiresCA(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CERT_PATH", dir)
	writeSelfSigned(t, dir, "cert.pem", "key.pem")
	yes := true

	// --tlsverify, no --tlscacert, no ca.pem where dockerd looks: refused, never the system roots.
	_, err := serverTLS(&config.Config{TLSVerify: &yes})
	assert.ErrorContains(t, err, "could not read CA certificate")
	assert.ErrorContains(t, err, filepath.Join(dir, "ca.pem"))

	// An empty CA file is refused too.
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), nil, 0o600))
	_, err = serverTLS(&config.Config{TLSVerify: &yes})
	assert.Check(t, err != nil)

	// dockerd's default ca.pem/cert.pem/key.pem in $DOCKER_CERT_PATH are used when present.
	writeSelfSigned(t, dir, "ca.pem", "ca-key.pem")
	c, err := serverTLS(&config.Config{TLSVerify: &yes})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.ClientAuth, tls.RequireAndVerifyClientCert))
	assert.Check(t, c.ClientCAs != nil)

	// --tls alone: server certificate, no client verification.
	c, err = serverTLS(&config.Config{TLS: &yes})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.ClientAuth, tls.NoClientCert))
}

func TestTCPFlagCombinations(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CERT_PATH", dir)
	writeSelfSigned(t, dir, "cert.pem", "key.pem")
	writeSelfSigned(t, dir, "ca.pem", "ca-key.pem")
	var slept []time.Duration
	sleep = func(d time.Duration) { slept = append(slept, d) }
	defer func() { sleep = time.Sleep }()
	yes, no := true, false
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		cfg    config.Config
		addr   string
		err    string
		sleeps []time.Duration
	}{
		{name: "no tls flag: refused", addr: "127.0.0.1:0", err: "refusing to listen on tcp://127.0.0.1:0 without TLS"},
		{name: "tls=false explicit, loopback: warned", cfg: config.Config{TLS: &no}, addr: "127.0.0.1:0", sleeps: []time.Duration{time.Second}},
		{name: "tls without verify, loopback: warned", cfg: config.Config{TLS: &yes}, addr: "127.0.0.1:0", sleeps: []time.Duration{time.Second}},
		{name: "tlsverify=false explicit, loopback", cfg: config.Config{TLS: &yes, TLSVerify: &no}, addr: "127.0.0.1:0", sleeps: []time.Duration{time.Second}},
		{name: "tlsverify: silent", cfg: config.Config{TLSVerify: &yes}, addr: "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slept = nil
			cfg := tc.cfg
			var tlsCfg *tls.Config
			if cfg.TLSEnabled() {
				var err error
				tlsCfg, err = serverTLS(&cfg)
				assert.NilError(t, err)
			}
			l, err := tcpListener(ctx, tc.addr, &cfg, tlsCfg)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			l.Close()
			assert.Check(t, is.DeepEqual(slept, tc.sleeps))
		})
	}
}

// TestWarnBeyondLoopback checks dockerd's long start-up delay for an unauthenticated API on an address
// beyond loopback (without binding one: tests stay on loopback).
func TestWarnBeyondLoopback(t *testing.T) {
	var slept []time.Duration
	sleep = func(d time.Duration) { slept = append(slept, d) }
	defer func() { sleep = time.Sleep }()
	ctx := context.Background()
	for _, tc := range []struct {
		addr     string
		explicit bool
		want     []time.Duration
	}{
		{"192.0.2.1:2376", false, []time.Duration{time.Second, 15 * time.Second}},
		{"0.0.0.0:2376", false, []time.Duration{time.Second, 15 * time.Second}},
		{"192.0.2.1:2376", true, []time.Duration{time.Second}},
		{"localhost:2376", false, []time.Duration{time.Second}},
		{"[::1]:2376", false, []time.Duration{time.Second}},
	} {
		slept = nil
		warnUnauthenticatedTCP(ctx, tc.addr, tc.explicit)
		assert.Check(t, is.DeepEqual(slept, tc.want), tc.addr)
	}
}
