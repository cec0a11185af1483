package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berthd/plugin/getter"
	v1 "github.com/berthd/berthd/plugin/v1"
	"github.com/containerd/errdefs"
	"github.com/docker/go-plugins-helpers/authorization"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// registryGetter resolves legacy plugins only (the store adds managed ones; not needed here).
type registryGetter struct{ r *v1.Registry }

func (g registryGetter) Lookup(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	p, err := g.r.Get(ctx, name, capability)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (g registryGetter) Acquire(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	return g.Lookup(ctx, name, capability)
}

func (g registryGetter) Release(context.Context, string, string) error { return nil }

func (g registryGetter) GetAllByCap(context.Context, string) ([]getter.CompatPlugin, error) {
	return nil, nil
}

// testPolicy is a real authorization plugin (go-plugins-helpers) with programmable answers.
type testPolicy struct {
	mu    sync.Mutex
	req   func(authorization.Request) authorization.Response
	res   func(authorization.Request) authorization.Response
	seen  []authorization.Request
	delay time.Duration
}

func (p *testPolicy) AuthZReq(r authorization.Request) authorization.Response {
	p.mu.Lock()
	p.seen = append(p.seen, r)
	f, d := p.req, p.delay
	p.mu.Unlock()
	time.Sleep(d)
	if f != nil {
		return f(r)
	}
	return authorization.Response{Allow: true}
}

func (p *testPolicy) AuthZRes(r authorization.Request) authorization.Response {
	p.mu.Lock()
	p.seen = append(p.seen, r)
	f := p.res
	p.mu.Unlock()
	if f != nil {
		return f(r)
	}
	return authorization.Response{Allow: true}
}

func (p *testPolicy) last() authorization.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[len(p.seen)-1]
}

// setup serves policies as legacy plugins named after the map keys in a temp socket dir.
func setup(t *testing.T, names ...string) (*Middleware, map[string]*testPolicy, string) {
	dir, err := os.MkdirTemp("", "authz")
	assert.NilError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	pols := map[string]*testPolicy{}
	for _, n := range names {
		pol := &testPolicy{}
		l, err := net.Listen("unix", filepath.Join(dir, n+".sock"))
		assert.NilError(t, err)
		t.Cleanup(func() { l.Close() })
		go func() { _ = authorization.NewHandler(pol).Serve(l) }()
		pols[n] = pol
	}
	cfg := v1.DefaultConfig()
	cfg.SocketDir, cfg.SpecDirs = dir, nil
	reg := v1.NewRegistry(cfg)
	t.Cleanup(reg.Close)
	return New(registryGetter{reg}, names), pols, dir
}

func serve(m *Middleware, h HandlerFunc, req *http.Request) (*httptest.ResponseRecorder, error) {
	rec := httptest.NewRecorder()
	err := m.Wrap(h)(rec, req)
	return rec, err
}

func jsonHandler(body string) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, err := w.Write([]byte(body))
		return err
	}
}

func TestAllowPassesRequestAndResponse(t *testing.T) {
	m, pols, _ := setup(t, "a1", "a2")
	var gotBody string
	h := func(w http.ResponseWriter, r *http.Request) error {
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		gotBody = string(b[:n])
		return jsonHandler(`{"Id":"x"}`)(w, r)
	}
	req := httptest.NewRequest("POST", "/v1.47/containers/create?name=c", strings.NewReader(`{"Image":"busybox"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Registry-Auth", "secret-credentials")
	rec, err := serve(m, h, req)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rec.Code, http.StatusCreated))
	assert.Check(t, is.Equal(rec.Body.String(), `{"Id":"x"}`))
	assert.Check(t, is.Equal(gotBody, `{"Image":"busybox"}`), "the handler still reads the whole body")
	for _, n := range []string{"a1", "a2"} {
		p := pols[n]
		assert.Assert(t, is.Len(p.seen, 2), n)
		r := p.seen[0]
		assert.Check(t, is.Equal(r.RequestMethod, "POST"))
		assert.Check(t, is.Equal(r.RequestURI, "/v1.47/containers/create?name=c"))
		assert.Check(t, is.Equal(string(r.RequestBody), `{"Image":"busybox"}`))
		_, leaked := r.RequestHeaders["X-Registry-Auth"]
		assert.Check(t, !leaked, "registry credentials are never sent to plugins")
		res := p.seen[1]
		assert.Check(t, is.Equal(res.ResponseStatusCode, http.StatusCreated))
		assert.Check(t, is.Equal(string(res.ResponseBody), `{"Id":"x"}`))
		assert.Check(t, is.Equal(res.ResponseHeaders["Content-Type"], "application/json"))
	}
}

func TestDenials(t *testing.T) {
	m, pols, _ := setup(t, "first", "second")
	ran := false
	h := func(w http.ResponseWriter, r *http.Request) error {
		ran = true
		return jsonHandler(`{"secret":1}`)(w, r)
	}

	// The first plugin's denial ends the chain: dockerd's wording, Forbidden, handler never run.
	pols["first"].req = func(authorization.Request) authorization.Response { return authorization.Response{Msg: "no way"} }
	rec, err := serve(m, h, httptest.NewRequest("GET", "/v1.47/info", nil))
	assert.Check(t, errdefs.IsPermissionDenied(err))
	assert.Check(t, is.Error(err, "authorization denied by plugin first: no way"))
	assert.Check(t, !ran)
	assert.Check(t, is.Len(pols["second"].seen, 0))
	assert.Check(t, is.Equal(rec.Body.Len(), 0))

	// A plugin reporting an error (Err, sent with status 500) fails the request, as in dockerd.
	pols["first"].req = func(authorization.Request) authorization.Response {
		return authorization.Response{Err: "policy broken"}
	}
	_, err = serve(m, h, httptest.NewRequest("GET", "/v1.47/info", nil))
	assert.Check(t, is.Error(err, "plugin first failed with error: AuthZPlugin.AuthZReq: policy broken"))
	assert.Check(t, !ran)

	// Response filtering: the handler ran, but nothing of its answer is sent.
	pols["first"].req = nil
	pols["second"].res = func(r authorization.Request) authorization.Response {
		if strings.Contains(string(r.ResponseBody), "secret") {
			return authorization.Response{Msg: "filtered"}
		}
		return authorization.Response{Allow: true}
	}
	ran = false
	rec, err = serve(m, h, httptest.NewRequest("GET", "/v1.47/info", nil))
	assert.Check(t, ran)
	assert.Check(t, is.Error(err, "authorization denied by plugin second: filtered"))
	assert.Check(t, is.Equal(rec.Body.Len(), 0))
	assert.Check(t, rec.Code != http.StatusCreated)
}

func TestPluginDownOrSlowFailsClosed(t *testing.T) {
	m, pols, dir := setup(t, "slow")
	m.SetTimeout(200 * time.Millisecond)
	ran := false
	h := func(w http.ResponseWriter, r *http.Request) error { ran = true; return nil }

	pols["slow"].delay = 2 * time.Second
	_, err := serve(m, h, httptest.NewRequest("GET", "/v1.47/info", nil))
	assert.Check(t, is.ErrorContains(err, "plugin slow failed with error"))
	assert.Check(t, !ran)
	pols["slow"].delay = 0

	assert.NilError(t, os.Remove(filepath.Join(dir, "slow.sock")))
	_, err = serve(m, h, httptest.NewRequest("GET", "/v1.47/info", nil))
	assert.Check(t, is.ErrorContains(err, "plugin slow failed with error"))
	assert.Check(t, !ran)

	// A name that never existed.
	m.SetPlugins([]string{"nosuch"})
	_, err = serve(m, h, httptest.NewRequest("GET", "/v1.47/info", nil))
	assert.Check(t, is.ErrorContains(err, "plugin nosuch failed with error"))
	assert.Check(t, !ran)
	assert.Check(t, is.ErrorContains(m.Validate(context.Background(), []string{"nosuch"}), "failed to validate authorization plugin"))

	// No plugins: everything passes.
	m.SetPlugins(nil)
	_, err = serve(m, h, httptest.NewRequest("GET", "/v1.47/info", nil))
	assert.NilError(t, err)
	assert.Check(t, ran)
}

func TestBodiesSentOnlyWhenJSONAndSmall(t *testing.T) {
	m, pols, _ := setup(t, "p")
	big := `{"x":"` + strings.Repeat("a", MaxBodySize) + `"}`
	var got int
	h := func(w http.ResponseWriter, r *http.Request) error {
		var v map[string]string
		if err := json.NewDecoder(r.Body).Decode(&v); err == nil {
			got = len(v["x"])
		}
		w.Header().Set("Content-Type", "application/x-tar")
		_, err := w.Write([]byte("tar bytes"))
		return err
	}
	req := httptest.NewRequest("POST", "/v1.47/build", strings.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	rec, err := serve(m, h, req)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(got, MaxBodySize), "the handler gets the whole body")
	assert.Check(t, is.Equal(rec.Body.String(), "tar bytes"))
	p := pols["p"]
	assert.Check(t, is.Len(p.seen[0].RequestBody, 0), "bodies over 1 MiB are not sent")
	assert.Check(t, is.Len(p.seen[1].ResponseBody, 0), "non-JSON responses are not sent")

	req = httptest.NewRequest("POST", "/v1.47/auth", strings.NewReader(`{"password":"pw"}`))
	req.Header.Set("Content-Type", "application/json")
	_, err = serve(m, h, req)
	assert.NilError(t, err)
	assert.Check(t, is.Len(p.seen[2].RequestBody, 0), "credentials to /auth are never sent")
}

func TestStreamsPassThrough(t *testing.T) {
	m, _, _ := setup(t, "p")
	h := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"status":"one"}`))
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte(`{"status":"two"}`))
		return nil
	}
	rec, err := serve(m, h, httptest.NewRequest("GET", "/v1.47/events", nil))
	assert.NilError(t, err)
	assert.Check(t, rec.Flushed)
	assert.Check(t, is.Equal(rec.Body.String(), `{"status":"one"}{"status":"two"}`))
}

func TestChainNames(t *testing.T) {
	m := New(nil, []string{"a", "repo/b:v2"})
	assert.Check(t, m.Has("a:latest") && m.Has("a") && m.Has("repo/b:v2"))
	assert.Check(t, !m.Has("repo/b"))
	m.Remove("a:latest")
	assert.Check(t, is.DeepEqual(m.Plugins(), []string{"repo/b:v2"}))
}

// TestPluginRemovedDuringRequest: a plugin taken out of the chain while the request ran (a forced plugin
// disable, a reload) is not asked about the response.
func TestPluginRemovedDuringRequest(t *testing.T) {
	m, pols, _ := setup(t, "p")
	h := func(w http.ResponseWriter, r *http.Request) error {
		m.Remove("p")
		return jsonHandler(`{}`)(w, r)
	}
	pols["p"].res = func(authorization.Request) authorization.Response { return authorization.Response{Msg: "gone"} }
	rec, err := serve(m, h, httptest.NewRequest("POST", "/v1.47/plugins/p/disable", nil))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rec.Code, http.StatusCreated))
	assert.Check(t, is.Len(pols["p"].seen, 1), "only AuthZReq")
}

// TestTLSUser: over TLS with a client certificate, the user is the certificate's common name.
func TestTLSUser(t *testing.T) {
	m, pols, _ := setup(t, "p")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	assert.NilError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	assert.NilError(t, err)
	cert, err := x509.ParseCertificate(der)
	assert.NilError(t, err)
	req := httptest.NewRequest("GET", "/v1.47/info", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	_, err = serve(m, jsonHandler(`{}`), req)
	assert.NilError(t, err)
	r := pols["p"].seen[0]
	assert.Check(t, is.Equal(r.User, "alice"))
	assert.Check(t, is.Equal(r.UserAuthNMethod, "TLS"))
	assert.Assert(t, is.Len(r.RequestPeerCertificates, 1))
	assert.Check(t, is.Equal(r.RequestPeerCertificates[0].Subject.CommonName, "alice"))
}

// TestLargeResponseIsStreamed: a response over MaxBodySize (docker save, export) is passed through rather
// than held in memory; it arrives whole.
func TestLargeResponseIsStreamed(t *testing.T) {
	m, pols, _ := setup(t, "p")
	chunk := strings.Repeat("x", 64<<10)
	n := MaxBodySize/len(chunk) + 4
	h := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/x-tar")
		for i := 0; i < n; i++ {
			if _, err := w.Write([]byte(chunk)); err != nil {
				return err
			}
		}
		return nil
	}
	rec, err := serve(m, h, httptest.NewRequest("GET", "/v1.47/images/get", nil))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rec.Body.Len(), n*len(chunk)))
	assert.Check(t, is.Equal(rec.Header().Get("Content-Type"), "application/x-tar"))
	p := pols["p"]
	assert.Check(t, is.Len(p.seen, 2))
	assert.Check(t, is.Len(p.seen[1].ResponseBody, 0))
}
