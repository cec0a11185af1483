package security

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestTLSVerifyNeedsCA: --tlsverify without a CA must not fall back to the system's public roots; with no
// ca.pem where dockerd looks by default, berthd refuses to start and says why.
func TestTLSVerifyNeedsCA(t *testing.T) {
	d := daemon.New(t)
	certDir := t.TempDir()
	assert.NilError(t, exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-subj", "/CN=berthd", "-days", "1", "-keyout", filepath.Join(certDir, "key.pem"),
		"-out", filepath.Join(certDir, "cert.pem")).Run())
	d.Env = []string{"DOCKER_CERT_PATH=" + certDir}
	err := d.StartWithError("-H", d.Host(), "-H", "tcp://127.0.0.1:"+freePort(t), "--tlsverify")
	assert.Check(t, err != nil)
	assert.Check(t, is.Contains(d.Log(), "could not read CA certificate"))
	assert.Check(t, is.Contains(d.Log(), filepath.Join(certDir, "ca.pem")))

	// --tls without verification starts, with dockerd's warning.
	port := freePort(t)
	d.Start(t, "-H", "tcp://127.0.0.1:"+port, "--tls")
	assert.Check(t, is.Contains(d.Log(), "Binding to IP address without --tlsverify is insecure"))
	// docker info says so too, as dockerd's does.
	info, err := d.Client(t).Info(context.Background())
	assert.NilError(t, err)
	found := false
	for _, w := range info.Warnings {
		if strings.Contains(w, "WARNING: API is accessible on https://127.0.0.1:"+port+" without TLS client verification.") {
			found = true
		}
	}
	assert.Check(t, found, "%q", info.Warnings)
}
