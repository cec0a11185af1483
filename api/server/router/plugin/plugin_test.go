package plugin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"

	"github.com/berthd/berthd/api/server"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/api/types/plugin"
)

type fakeBackend struct {
	calls   []string
	body    string
	timeout int
	force   bool
	set     []string
	filter  filters.Args
	privs   []plugin.Privilege
	auth    string
}

func (b *fakeBackend) rec(s string) { b.calls = append(b.calls, s) }

func (b *fakeBackend) find(name string) error {
	if name != "vol" && name != "org/vol:1.0" {
		return errdefs.ErrNotFound.WithMessage(`plugin "` + name + `" not found`)
	}
	return nil
}

func (b *fakeBackend) List(ctx context.Context, f filters.Args) ([]plugin.Plugin, error) {
	b.filter = f
	if err := f.Validate(map[string]bool{"capability": true, "enabled": true}); err != nil {
		return nil, err
	}
	return nil, nil
}

func (b *fakeBackend) Inspect(ctx context.Context, name string) (*plugin.Plugin, error) {
	b.rec("inspect " + name)
	if err := b.find(name); err != nil {
		return nil, err
	}
	return &plugin.Plugin{ID: "id", Name: name, Settings: plugin.Settings{Env: []string{}}}, nil
}

func (b *fakeBackend) Create(ctx context.Context, name string, tarball io.Reader) error {
	body, _ := io.ReadAll(tarball)
	b.body = string(body)
	b.rec("create " + name)
	return nil
}

func (b *fakeBackend) Enable(ctx context.Context, name string, timeout int) error {
	b.rec("enable " + name)
	b.timeout = timeout
	return b.find(name)
}

func (b *fakeBackend) Disable(ctx context.Context, name string, force bool) error {
	b.rec("disable " + name)
	b.force = force
	if name == "vol" && !force {
		return errdefs.ErrConflict.WithMessage("plugin vol:latest is in use")
	}
	return b.find(name)
}

func (b *fakeBackend) Remove(ctx context.Context, name string, force bool) error {
	b.rec("remove " + name)
	b.force = force
	return b.find(name)
}

func (b *fakeBackend) Set(ctx context.Context, name string, args []string) error {
	b.rec("set " + name)
	b.set = args
	return b.find(name)
}

func (b *fakeBackend) Privileges(ctx context.Context, remote string, auth *image.AuthConfig) ([]plugin.Privilege, error) {
	if remote == "nope" {
		return nil, errdefs.ErrNotFound.WithMessage("manifest for nope:latest not found")
	}
	if auth != nil {
		b.auth = auth.Username
	}
	return nil, nil
}
func (b *fakeBackend) PullName(remote, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	return remote + ":latest", nil
}
func (b *fakeBackend) Pull(ctx context.Context, remote, name string, privs []plugin.Privilege, auth *image.AuthConfig, progress func(image.JSONMessage)) error {
	b.rec("pull " + remote + " " + name)
	b.privs = privs
	switch remote {
	case "taken":
		return errdefs.ErrInvalidArgument.WithMessage("plugin taken:latest already exists")
	case "broken":
		progress(image.JSONMessage{Status: "Pulling fs layer", ID: "abc"})
		return errdefs.ErrDataLoss.WithMessage("layer does not match")
	}
	progress(image.JSONMessage{Status: "Download complete", ID: "abc"})
	return nil
}
func (b *fakeBackend) Push(ctx context.Context, name string, auth *image.AuthConfig, progress func(image.JSONMessage)) error {
	b.rec("push " + name)
	if err := b.find(name); err != nil {
		return err
	}
	progress(image.JSONMessage{Status: "Pushed", ID: "abc"})
	return nil
}
func (b *fakeBackend) Upgrade(ctx context.Context, name, remote string, privs []plugin.Privilege, auth *image.AuthConfig, progress func(image.JSONMessage)) error {
	b.rec("upgrade " + name + " " + remote)
	if name == "vol" {
		return errdefs.ErrConflict.WithMessage("plugin must be disabled before upgrading: plugin vol:latest is enabled")
	}
	return b.find(name)
}
func do(h http.Handler, method, path, ctype, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func newServer(b Backend) http.Handler {
	s := server.New(server.Config{ServerVersion: "test"})
	s.InitRouter(NewRouter(b))
	return s
}

func TestRoutes(t *testing.T) {
	b := &fakeBackend{}
	h := newServer(b)
	for _, tc := range []struct {
		method, path, ctype, body string
		code                      int
		respBody                  string
	}{
		{method: "GET", path: "/v1.45/plugins", code: 200, respBody: "[]\n"},
		{method: "GET", path: `/v1.45/plugins?filters={"enabled":{"true":true}}`, code: 200},
		{method: "GET", path: `/v1.45/plugins?filters={"nope":{"x":true}}`, code: 400},
		{method: "GET", path: "/v1.45/plugins/vol/json", code: 200},
		{method: "GET", path: "/v1.45/plugins/org/vol:1.0/json", code: 200},
		{method: "GET", path: "/v1.45/plugins/nope/json", code: 404},
		{method: "GET", path: "/v1.45/plugins/vol", code: 404},
		{method: "GET", path: "/v1.45/plugins/privileges?remote=x", code: 200, respBody: "[]\n"},
		{method: "GET", path: "/v1.45/plugins/privileges?remote=nope", code: 404},
		{method: "POST", path: "/v1.45/plugins/create?name=vol", ctype: "application/x-tar", body: "TAR", code: 204},
		{method: "POST", path: "/v1.45/plugins/vol/enable?timeout=30", code: 200, respBody: ""},
		{method: "POST", path: "/v1.45/plugins/vol/enable", code: 500},
		{method: "POST", path: "/v1.45/plugins/nope/enable?timeout=0", code: 404},
		{method: "POST", path: "/v1.45/plugins/vol/disable", code: 409},
		{method: "POST", path: "/v1.45/plugins/vol/disable?force=1", code: 200, respBody: ""},
		{method: "POST", path: "/v1.45/plugins/org/vol:1.0/set", ctype: "application/json", body: `["A=1","m.source=/x"]`, code: 204},
		{method: "POST", path: "/v1.45/plugins/vol/set", ctype: "application/json", body: `{`, code: 400},
		{method: "POST", path: "/v1.45/plugins/vol/frobnicate", code: 404},
		{method: "POST", path: "/v1.45/plugins/vol/push", code: 200, respBody: `{"status":"Pushed","id":"abc"}` + "\n"},
		{method: "POST", path: "/v1.45/plugins/nope/push", code: 404},
		{method: "POST", path: "/v1.45/plugins/pull?remote=x", code: 200, respBody: `{"status":"Download complete","id":"abc"}` + "\n"},
		{method: "POST", path: "/v1.45/plugins/pull?remote=taken", ctype: "application/json", body: "[]", code: 400},
		{method: "POST", path: "/v1.45/plugins/pull?remote=x", ctype: "application/json", body: "{", code: 400},
		{method: "POST", path: "/v1.45/plugins/vol/upgrade?remote=x", ctype: "application/json", body: "[]", code: 409},
		{method: "POST", path: "/v1.45/plugins/org/vol:1.0/upgrade?remote=x", ctype: "application/json", body: "[]", code: 200},
		{method: "DELETE", path: "/v1.45/plugins/vol?force=1", code: 200, respBody: ""},
		{method: "DELETE", path: "/v1.45/plugins/nope", code: 404},
	} {
		w := do(h, tc.method, tc.path, tc.ctype, tc.body)
		assert.Check(t, w.Code == tc.code, "%s %s: %d %s", tc.method, tc.path, w.Code, w.Body.String())
		if tc.respBody != "" || tc.code == 200 && tc.method != "GET" {
			assert.Check(t, w.Body.String() == tc.respBody, "%s %s: body %q", tc.method, tc.path, w.Body.String())
		}
		if tc.code >= 400 {
			var e struct{ Message string }
			assert.Check(t, json.Unmarshal(w.Body.Bytes(), &e) == nil && e.Message != "", "%s %s: %s", tc.method, tc.path, w.Body.String())
		}
	}
	assert.Equal(t, b.body, "TAR")
	assert.DeepEqual(t, b.set, []string{"A=1", "m.source=/x"})
	assert.Equal(t, b.timeout, 0)
	assert.Check(t, !b.force)
	do(h, "DELETE", "/v1.45/plugins/vol?force=true", "", "")
	assert.Check(t, b.force)
}

func TestPullStream(t *testing.T) {
	b := &fakeBackend{}
	h := newServer(b)
	req := httptest.NewRequest("POST", "/v1.45/plugins/pull?remote=localhost:5000/vp&name=mine", strings.NewReader(`[{"Name":"network","Description":"d","Value":["host"]}]`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Registry-Auth", "eyJ1c2VybmFtZSI6InUifQ==")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, w.Code, 200, w.Body.String())
	assert.Equal(t, w.Header().Get("Docker-Plugin-Name"), "mine")
	assert.Equal(t, w.Header().Get("Content-Type"), "application/json")
	assert.DeepEqual(t, b.privs, []plugin.Privilege{{Name: "network", Description: "d", Value: []string{"host"}}})
	assert.DeepEqual(t, b.calls, []string{"pull localhost:5000/vp mine"})

	// An error after progress started travels in the stream.
	w = do(h, "POST", "/v1.45/plugins/pull?remote=broken", "", "")
	assert.Equal(t, w.Code, 200)
	assert.Equal(t, w.Header().Get("Docker-Plugin-Name"), "broken:latest")
	assert.Check(t, strings.Contains(w.Body.String(), `"error":"layer does not match"`), w.Body.String())

	// Credentials reach the backend.
	req = httptest.NewRequest("GET", "/v1.45/plugins/privileges?remote=x", nil)
	req.Header.Set("X-Registry-Auth", "eyJ1c2VybmFtZSI6InUifQ")
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Equal(t, b.auth, "u")
}
