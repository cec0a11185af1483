// Package testenv decides what a test does when a part it needs is missing (root, containerd, busybox,
// docker-registry, Debian's dockerd, a built image): outside CI it skips with the reason, so a developer
// without root can still run the unit tests; in strict mode — BERTHD_STRICT=1, which `make test` sets when
// CI is set — it fails, so a CI machine that lacks a part can never turn a package into a silent pass.
// It also starts Debian's dockerd, isolated, for tests and benchmarks that compare with it. Test support
// only: nothing in the daemon imports it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether missing parts fail tests instead of skipping them.
func Strict() bool {
	v := os.Getenv("BERTHD_STRICT")
	return v != "" && v != "0" && v != "false"
}

// Missing stops the test because a part it needs is missing: a skip, or a failure in strict mode.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("required test dependency missing (BERTHD_STRICT): %s", msg)
	}
	t.Skip(msg)
}

// NeedRoot stops the test unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}

// NeedCommand stops the test unless name is on PATH; it returns the command's path.
func NeedCommand(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not installed (Debian package %s)", name, pkg)
	}
	return p
}

// NeedFile stops the test unless path exists (a binary from a Debian package, for instance).
func NeedFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s missing (Debian package %s)", path, pkg)
	}
}

// NoError stops the test when err, from preparing a part (building a test image, say), is not nil.
func NoError(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		Missing(t, "%s: %v", what, err)
	}
}
