package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/server/router"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type testRouter []router.Route

func (r testRouter) Routes() []router.Route { return r }

func newTestServer() *Server {
	s := New(Config{ServerVersion: "9.9.9"})
	s.InitRouter(testRouter{
		router.Get("/echo-version", func(w http.ResponseWriter, r *http.Request) error {
			return httputils.WriteJSON(w, 200, httputils.VersionFromContext(r.Context()))
		}),
		router.Get("/things/{name...}", func(w http.ResponseWriter, r *http.Request) error {
			return errdefs.ErrNotFound.WithMessage("no such thing: " + r.PathValue("name"))
		}),
		router.Post("/fail", func(w http.ResponseWriter, r *http.Request) error {
			return errors.New("boom")
		}),
		router.Get("/stream", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(200)
			w.Write([]byte("partial"))
			return errors.New("after the header")
		}),
	})
	return s
}

func do(s *Server, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func message(t *testing.T, rec *httptest.ResponseRecorder) string {
	var body httputils.ErrorBody
	assert.NilError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	return body.Message
}

func TestVersionNegotiation(t *testing.T) {
	s := newTestServer()
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/echo-version", `"1.45"`, 200},
		{"/v1.45/echo-version", `"1.45"`, 200},
		{"/v1.41/echo-version", `"1.41"`, 200},
		{"/v1.24/echo-version", `"1.24"`, 200},
	} {
		rec := do(s, "GET", tc.path)
		assert.Check(t, is.Equal(rec.Code, tc.code), tc.path)
		assert.Check(t, is.Equal(rec.Body.String(), tc.want+"\n"), tc.path)
		assert.Check(t, is.Equal(rec.Header().Get("Api-Version"), "1.45"))
		assert.Check(t, is.Equal(rec.Header().Get("Server"), "Docker/9.9.9 (linux)"))
		assert.Check(t, is.Equal(rec.Header().Get("Ostype"), "linux"))
		assert.Check(t, is.Equal(rec.Header().Get("Docker-Experimental"), "false"))
	}
	rec := do(s, "GET", "/v1.46/echo-version")
	assert.Check(t, is.Equal(rec.Code, 400))
	assert.Check(t, is.Equal(message(t, rec), "client version 1.46 is too new. Maximum supported API version is 1.45"))
	rec = do(s, "GET", "/v1.23/echo-version")
	assert.Check(t, is.Equal(rec.Code, 400))
	assert.Check(t, is.Equal(message(t, rec), "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"))
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	s := newTestServer()
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"}, {"GET", "/v1.45/nope"}, {"DELETE", "/echo-version"}, {"GET", "/fail"},
	} {
		rec := do(s, tc.method, tc.path)
		assert.Check(t, is.Equal(rec.Code, 404), "%s %s", tc.method, tc.path)
		assert.Check(t, is.Equal(rec.Header().Get("Content-Type"), "application/json"))
		assert.Check(t, is.Equal(message(t, rec), "page not found"))
		assert.Check(t, is.Equal(rec.Header().Get("Api-Version"), ""), "404s bypass the version headers, as dockerd")
	}
}

func TestErrorsBecomeJSON(t *testing.T) {
	s := newTestServer()
	rec := do(s, "GET", "/v1.45/things/a/b")
	assert.Check(t, is.Equal(rec.Code, 404))
	assert.Check(t, is.Equal(message(t, rec), "no such thing: a/b"), "path wildcards keep slashes")
	rec = do(s, "POST", "/fail")
	assert.Check(t, is.Equal(rec.Code, 500))
	assert.Check(t, is.Equal(message(t, rec), "boom"))
	rec = do(s, "GET", "/stream")
	assert.Check(t, is.Equal(rec.Code, 200))
	assert.Check(t, is.Equal(rec.Body.String(), "partial"), "an error after the response started adds nothing")
}
