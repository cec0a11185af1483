// Package buildx gives tests and benchmarks the real buildx CLI plugin: Debian 12 packages none, so it is
// built from its Go module (github.com/docker/buildx, at Version) once per machine into the user's cache
// directory, and laid out as a CLI plugin in a private DOCKER_CONFIG. Building takes minutes on a fresh
// machine; later callers reuse the binary.
package buildx

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berthd/berthd/hack/testenv"
	"golang.org/x/sys/unix"
)

// Version is the buildx release tests use: recent enough for the docker CLI 28 on the test machines, and
// a client of every BuildKit API berthd's embedded v0.17 serves.
const Version = "v0.23.0"

// Binary returns the path of the buildx binary, building it first if this machine has none.
func Binary() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "berthd-test", "buildx-"+Version)
	bin := filepath.Join(dir, "docker-buildx")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Test binaries of several packages may ask at once: one builds, the others wait for it.
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "docker-buildx"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// ConfigDir makes dir a DOCKER_CONFIG with buildx as a CLI plugin and `docker builder` aliased to it (as
// `docker buildx install` does), so that plain `docker build` goes through buildx.
func ConfigDir(dir string) error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	plugins := filepath.Join(dir, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return err
	}
	link := filepath.Join(plugins, "docker-buildx")
	_ = os.Remove(link)
	if err := os.Symlink(bin, link); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"aliases":{"builder":"buildx"}}`), 0o600)
}

// Need returns a fresh DOCKER_CONFIG directory with buildx in it for t, failing t (not skipping: the
// module proxy is part of the test machine) when buildx cannot be built.
func Need(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	testenv.NoError(t, ConfigDir(dir), "buildx")
	return dir
}

// build compiles buildx into dir/docker-buildx. buildx's go.mod has exclude and replace directives, which
// `go install pkg@version` refuses, so the module is downloaded and built as the main module, from a
// writable copy without its vendor directory (the module zip keeps only vendor/modules.txt).
func build(dir string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building buildx needs the go command: %w", err)
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	dl := exec.Command(gobin, "mod", "download", "-json", "github.com/docker/buildx@"+Version)
	dl.Env, dl.Dir = env, dir
	out, err := dl.Output()
	if err != nil {
		return fmt.Errorf("go mod download buildx %s: %v", Version, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download buildx %s: no module directory in %q", Version, out)
	}
	src := filepath.Join(dir, "src")
	if out, err := exec.Command("cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		return fmt.Errorf("copy buildx source: %v: %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		return fmt.Errorf("chmod buildx source: %v: %s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(src, "vendor")); err != nil {
		return err
	}
	cmd := exec.Command(gobin, "build", "-ldflags", "-X github.com/docker/buildx/version.Version="+Version, "-o", filepath.Join(dir, "docker-buildx"), "./cmd/buildx")
	cmd.Env, cmd.Dir = env, src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build buildx %s: %v\n%s", Version, err, out)
	}
	return nil
}
