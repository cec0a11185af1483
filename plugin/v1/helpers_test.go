package v1

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// fakePlugin is an in-test plugin on a real unix socket: it answers /Plugin.Activate with implements
// and records every call (method and body) it receives.
type fakePlugin struct {
	t          *testing.T
	path       string
	implements []string
	mu         sync.Mutex
	calls      []string
	bodies     map[string]string
	accepts    []string
	handlers   map[string]http.HandlerFunc
	srv        *http.Server
	ln         *net.UnixListener
}

func newFakePlugin(t *testing.T, path string, implements ...string) *fakePlugin {
	t.Helper()
	return &fakePlugin{t: t, path: path, implements: implements, bodies: map[string]string{}, handlers: map[string]http.HandlerFunc{}}
}

func (f *fakePlugin) handle(method string, h http.HandlerFunc) *fakePlugin {
	f.handlers["/"+method] = h
	return f
}

func (f *fakePlugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, r.URL.Path[1:])
	f.bodies[r.URL.Path[1:]] = string(body)
	f.accepts = append(f.accepts, r.Header.Get("Accept"))
	h := f.handlers[r.URL.Path]
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if r.URL.Path == "/Plugin.Activate" {
		json.NewEncoder(w).Encode(map[string]any{"Implements": f.implements})
		return
	}
	if r.URL.Path == "/Echo" {
		w.Write(body)
		return
	}
	http.NotFound(w, r)
}

func (f *fakePlugin) start() *fakePlugin {
	f.t.Helper()
	assert.NilError(f.t, os.MkdirAll(filepath.Dir(f.path), 0o755))
	os.Remove(f.path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: f.path, Net: "unix"})
	assert.NilError(f.t, err)
	f.ln = l
	f.srv = &http.Server{Handler: f}
	go f.srv.Serve(l)
	f.t.Cleanup(func() { f.srv.Close() })
	return f
}

// kill stops serving but leaves the socket file: connections are refused, as with a crashed plugin.
func (f *fakePlugin) kill() {
	f.ln.SetUnlinkOnClose(false)
	f.srv.Close()
}

func (f *fakePlugin) stop() { f.srv.Close() }

func (f *fakePlugin) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakePlugin) count(method string) int {
	n := 0
	for _, c := range f.callList() {
		if c == method {
			n++
		}
	}
	return n
}

// deadSocket leaves a socket file nobody listens on.
func deadSocket(t *testing.T, path string) {
	t.Helper()
	assert.NilError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	assert.NilError(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()
}

func testConfig(t *testing.T) Config {
	t.Helper()
	d := t.TempDir()
	return Config{
		SocketDir: filepath.Join(d, "run"),
		SpecDirs:  []string{filepath.Join(d, "etc"), filepath.Join(d, "lib")},
		Cooldown:  500 * time.Millisecond,
	}
}

// within runs f and logs how long it took against what it is expected to take. It asserts nothing about
// the time (a loaded machine must not fail a test): the checks inside f prove the path taken, e.g. a
// fail-fast error rather than a dial.
// hangUntil is a plugin handler that answers nothing until release is closed or the caller gives up.
func hangUntil(release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

func within(t *testing.T, expected time.Duration, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	f()
	d := time.Since(start)
	t.Logf("took %v (expected under %v)", d, expected)
	return d
}
