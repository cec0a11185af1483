// Package testutil starts a real registry for tests: Debian's docker-registry on a free loopback port,
// storage in a temp dir, optionally with htpasswd (bcrypt) basic auth. Test support only.
package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"
)

// StartRegistry runs docker-registry and returns its host:port; with user set, basic auth is required.
// A missing docker-registry (or, for auth, htpasswd from apache2-utils) is testenv.Missing. The
// registry is stopped when the test ends.
func StartRegistry(t testing.TB, user, pass string) string {
	t.Helper()
	return StartRegistryWith(t, Options{User: user, Pass: pass})
}

// Options configure StartRegistryWith.
type Options struct {
	User, Pass string
	// TLS serves HTTPS with a throw-away self-signed certificate.
	TLS bool
}

// StartRegistryWith is StartRegistry with options.
func StartRegistryWith(t testing.TB, o Options) string {
	t.Helper()
	user, pass := o.User, o.Pass
	bin := testenv.NeedCommand(t, "docker-registry", "docker-registry")
	// A daemon under test must reach this registry on the host's loopback: the integration harness starts
	// daemons of this test in the host's network namespace (integration/internal/daemon).
	t.Setenv("BERTHD_TEST_HOST_LOOPBACK", "1")
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if user != "" {
		out, err := exec.Command("htpasswd", "-Bbn", user, pass).Output()
		if err != nil {
			testenv.Missing(t, "htpasswd (apache2-utils): %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	scheme := "http"
	if o.TLS {
		cert, key := selfSigned(t, dir)
		cfg = strings.Replace(cfg, "  addr: "+addr+"\n", "  addr: "+addr+"\n  tls:\n    certificate: "+cert+"\n    key: "+key+"\n", 1)
		scheme = "https"
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test registry
	for i := 0; i < 100; i++ {
		if resp, err := hc.Get(scheme + "://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("registry did not start")
	return ""
}

func selfSigned(t testing.TB, dir string) (certPath, keyPath string) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
