package distribution

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	imagetypes "github.com/berthd/berthd/api/types/image"
	remoteserrors "github.com/containerd/containerd/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// registry answers every request with status and body (a registry error document when code is set),
// and a Basic challenge on 401.
func registry(t *testing.T, status int, code, msg string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if code != "" && r.Method != http.MethodHead {
			w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"` + msg + `"}]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestRegistryErrorClasses(t *testing.T) {
	ctx := context.Background()
	s := New(nil, Config{Namespace: "test"})
	for _, tc := range []struct {
		status int
		is     func(error) bool
		class  string
	}{
		{http.StatusUnauthorized, errdefs.IsUnauthorized, "Unauthenticated"},
		{http.StatusForbidden, errdefs.IsPermissionDenied, "PermissionDenied"},
		{http.StatusNotFound, errdefs.IsNotFound, "NotFound"},
		{http.StatusTooManyRequests, errdefs.IsUnavailable, "Unavailable"},
		{http.StatusServiceUnavailable, errdefs.IsUnavailable, "Unavailable"},
		{http.StatusBadRequest, errdefs.IsInvalidArgument, "InvalidArgument"},
	} {
		host := registry(t, tc.status, "", "")
		ref, err := reference.ParseNormalizedNamed(host + "/x:1")
		assert.NilError(t, err)
		_, _, err = s.resolver(nil).Resolve(ctx, ref.String())
		assert.Check(t, err != nil)
		assert.Check(t, tc.is(classify(err)), "%d: want %s, got %v", tc.status, tc.class, err)
	}

	// Unreachable: Unavailable, whatever the words of the network error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := l.Addr().String()
	l.Close()
	ref, _ := reference.ParseNormalizedNamed(addr + "/x:1")
	_, err = s.Resolve(ctx, ref, nil)
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)

	// The registry's error document gives the words; the status the class.
	err = classify(remoteserrors.ErrUnexpectedStatus{StatusCode: 403, Status: "403 Forbidden", RequestMethod: "GET", RequestURL: "u",
		Body: []byte(`{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)})
	assert.Check(t, errdefs.IsPermissionDenied(err))
	assert.Equal(t, err.Error(), "denied: requested access to the resource is denied")
	err = classify(remoteserrors.ErrUnexpectedStatus{StatusCode: 502, Status: "502 Bad Gateway", RequestMethod: "GET", RequestURL: "u", Body: []byte("<html>")})
	assert.Check(t, errdefs.IsUnavailable(err))
	assert.Equal(t, err.Error(), "unexpected status from GET request to u: 502 Bad Gateway")
	assert.Check(t, classify(context.Canceled) == context.Canceled)
}

// What pull, push and login answer for each class, in dockerd's words.
func TestRegistryErrorAnswers(t *testing.T) {
	ctx := context.Background()
	s := New(nil, Config{Namespace: "test"})

	host := registry(t, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
	ref, _ := reference.ParseNormalizedNamed(host + "/x:1")
	_, err := s.Resolve(ctx, ref, nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "pull access denied for "+host+"/x, repository does not exist or may require 'docker login'"))

	host = registry(t, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
	ref, _ = reference.ParseNormalizedNamed(host + "/x:1")
	_, err = s.Resolve(ctx, ref, nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Equal(t, err.Error(), "manifest for "+host+"/x:1 not found: manifest unknown: manifest unknown")

	err = pushError(ref, classify(remoteserrors.ErrUnexpectedStatus{StatusCode: 401, Status: "401 Unauthorized",
		Body: []byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)}))
	assert.Check(t, errdefs.IsUnauthorized(err))
	assert.Equal(t, err.Error(), "unauthorized: authentication required")

	host = registry(t, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
	_, err = s.Login(ctx, &imagetypes.AuthConfig{Username: "u", Password: "wrong", ServerAddress: host})
	assert.Check(t, errdefs.IsUnauthorized(err), "%v", err)
	assert.Equal(t, err.Error(), "login attempt to http://"+host+"/v2/ failed with status: 401 Unauthorized")

	host = registry(t, http.StatusInternalServerError, "", "")
	_, err = s.Login(ctx, &imagetypes.AuthConfig{Username: "u", Password: "p", ServerAddress: host})
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
}

// FuzzRegistryError: any error body a registry sends gives an error with a message and the status's class.
func FuzzRegistryError(f *testing.F) {
	f.Add(401, []byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	f.Add(404, []byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}`))
	f.Add(503, []byte(`<html>busy</html>`))
	f.Add(403, []byte(`{"errors":null}`))
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		err := classify(remoteserrors.ErrUnexpectedStatus{StatusCode: code, Status: http.StatusText(code), RequestMethod: "GET", RequestURL: "u", Body: body})
		if err.Error() == "" {
			t.Fatal("empty message")
		}
		if code == 401 && !errdefs.IsUnauthorized(err) || code == 404 && !errdefs.IsNotFound(err) || code >= 500 && !errdefs.IsUnavailable(err) {
			t.Fatalf("%d: wrong class: %v", code, err)
		}
	})
}
