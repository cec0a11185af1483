package daemon

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/mkimage"
	"github.com/berthd/berthd/hack/testenv"
)

// NewWithBusybox starts a daemon with extra flags and busybox:latest loaded.
func NewWithBusybox(t testing.TB, extra ...string) *Daemon {
	t.Helper()
	d := New(t)
	d.Start(t, extra...)
	d.LoadBusybox(t)
	return d
}

// LoadBusybox loads busybox:latest, built offline by hack/mkimage, with `docker load`. An image that
// cannot be built (no busybox on the machine) is a missing part: a failure under CI.
func (d *Daemon) LoadBusybox(t testing.TB) {
	t.Helper()
	img, err := mkimage.BusyboxImage("busybox:latest")
	testenv.NoError(t, err, "building the busybox test image")
	var b bytes.Buffer
	if err := mkimage.WriteSave(&b, []mkimage.Image{img}); err != nil {
		t.Fatalf("writing the busybox image: %v", err)
	}
	d.MustDockerStdin(t, b.Bytes(), "load")
}

// MustDocker runs the docker CLI against d, fails the test unless it exits 0 and returns its trimmed stdout.
func (d *Daemon) MustDocker(t testing.TB, args ...string) string {
	t.Helper()
	return d.MustDockerStdin(t, nil, args...)
}

// MustDockerStdin is MustDocker with stdin.
func (d *Daemon) MustDockerStdin(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	res := d.DockerStdin(t, stdin, args...)
	if res.ExitCode != 0 {
		t.Fatalf("docker %v: exit %d: %s", args, res.ExitCode, res.Combined())
	}
	return strings.TrimSpace(res.Stdout)
}

// Raw sends one API request over d's socket (a JSON body when body is not empty) and returns the status
// and the body.
func (d *Daemon) Raw(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	ctype := ""
	if body != "" {
		ctype = "application/json"
	}
	return d.Request(t, method, path, ctype, body)
}

// Request sends one API request over d's socket with a Content-Type (none when empty) and returns the
// status and the body.
func (d *Daemon) Request(t testing.TB, method, path, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berthd"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := d.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// WaitFor polls cond every 100ms and fails the test when it is still false after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
