// Package authz is the API's authorization middleware: every routed request is put, in order, to the
// `docker.authz/1.0` plugins named by --authorization-plugin (legacy or managed, found through
// plugin/getter), before its handler runs (/AuthZPlugin.AuthZReq) and again with the response before it is
// sent (/AuthZPlugin.AuthZRes), with dockerd's request and response shapes and its error wording.
//
// It fails closed: a plugin that cannot be found or reached, answers late or answers nonsense denies the
// request. It imports plugin/getter and the standard library only; the server knows it through
// Middleware.Wrap.
package authz

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// Capability is what an authorization plugin implements ("docker.authz/1.0" for managed plugins).
const Capability = "authz"

// Plugin methods.
const (
	reqMethod = "AuthZPlugin.AuthZReq"
	resMethod = "AuthZPlugin.AuthZRes"
)

// MaxBodySize bounds the request and response bodies sent to plugins, as in dockerd: larger ones are
// not sent (the request is still authorized, on its other fields).
const MaxBodySize = 1 << 20

// DefaultCallTimeout bounds one plugin call; past it the request is denied, so a hung plugin costs a
// client this long at most and never holds the daemon.
const DefaultCallTimeout = 10 * time.Second

// Request is what plugins receive (dockerd's authorization.Request).
type Request struct {
	User                    string            `json:"User,omitempty"`
	UserAuthNMethod         string            `json:"UserAuthNMethod,omitempty"`
	RequestMethod           string            `json:"RequestMethod,omitempty"`
	RequestURI              string            `json:"RequestUri,omitempty"`
	RequestBody             []byte            `json:"RequestBody,omitempty"`
	RequestHeaders          map[string]string `json:"RequestHeaders,omitempty"`
	RequestPeerCertificates []*PeerCert       `json:"RequestPeerCertificates,omitempty"`
	ResponseStatusCode      int               `json:"ResponseStatusCode,omitempty"`
	ResponseBody            []byte            `json:"ResponseBody,omitempty"`
	ResponseHeaders         map[string]string `json:"ResponseHeaders,omitempty"`
}

// PeerCert is a client certificate, sent as a JSON string holding its PEM form (dockerd's encoding).
type PeerCert x509.Certificate

// MarshalJSON encodes the certificate as PEM in a JSON string.
func (c *PeerCert) MarshalJSON() ([]byte, error) {
	return json.Marshal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// Response is a plugin's answer.
type Response struct {
	Allow bool   `json:"Allow"`
	Msg   string `json:"Msg,omitempty"`
	Err   string `json:"Err,omitempty"`
}

// Middleware asks the configured plugins about every request. The list may be replaced at any time
// (SIGHUP); a request uses the list as it was when it arrived.
type Middleware struct {
	getter  getter.PluginGetter
	timeout time.Duration

	mu    sync.RWMutex
	names []string
}

// New returns a middleware over getter with the given plugin names (none: every request passes).
func New(g getter.PluginGetter, names []string) *Middleware {
	m := &Middleware{getter: g, timeout: DefaultCallTimeout}
	m.SetPlugins(names)
	return m
}

// SetTimeout changes the deadline of one plugin call (daemon.json plugin-timeouts.default; tests). Call
// before serving.
func (m *Middleware) SetTimeout(d time.Duration) { m.timeout = d }

// SetPlugins replaces the list of plugins.
func (m *Middleware) SetPlugins(names []string) {
	m.mu.Lock()
	m.names = append([]string(nil), names...)
	m.mu.Unlock()
}

// Plugins is the current list.
func (m *Middleware) Plugins() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]string(nil), m.names...)
}

// Has reports whether the plugin named name (a reference, with or without its tag) is in the chain.
func (m *Middleware) Has(name string) bool {
	want := withTag(name)
	for _, n := range m.Plugins() {
		if withTag(n) == want {
			return true
		}
	}
	return false
}

// Remove takes a plugin out of the chain (a managed plugin force-disabled by the administrator).
func (m *Middleware) Remove(name string) {
	want := withTag(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.names[:0:0]
	for _, n := range m.names {
		if withTag(n) != want {
			out = append(out, n)
		}
	}
	m.names = out
}

func withTag(name string) string {
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name
	}
	return name + ":latest"
}

// Validate resolves every name, as dockerd does at start and on reload: a plugin that does not exist or
// does not implement authz is an error naming it.
func (m *Middleware) Validate(ctx context.Context, names []string) error {
	for _, n := range names {
		ctx, cancel := context.WithTimeout(ctx, m.timeout)
		_, err := m.getter.Lookup(ctx, n, Capability)
		cancel()
		if err != nil {
			return fmt.Errorf("failed to validate authorization plugin: %w", err)
		}
	}
	return nil
}

// HandlerFunc is a route handler (api/server/router's shape).
type HandlerFunc = func(w http.ResponseWriter, r *http.Request) error

// Wrap puts next behind the plugins. An empty list costs one read lock per request.
func (m *Middleware) Wrap(next HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		names := m.Plugins()
		if len(names) == 0 {
			return next(w, r)
		}
		ctx := r.Context()
		req, err := newRequest(r)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := m.ask(ctx, n, reqMethod, req); err != nil {
				log.G(ctx).WithField("plugin", n).WithError(err).Debugf("request %s %s refused", r.Method, r.RequestURI)
				return err
			}
		}
		bw := &bufferedWriter{under: w, header: http.Header{}}
		if err := next(bw, r); err != nil {
			// dockerd does not submit error answers to AuthZRes: they carry no data.
			if bw.streamed {
				return err
			}
			for k, v := range bw.header {
				w.Header()[k] = v
			}
			return err
		}
		// A plugin taken out of the chain meanwhile (force-disabled by this very request, or a reload) is
		// not asked about the response: it may be gone.
		names = stillIn(names, m.Plugins())
		req.ResponseStatusCode = bw.statusCode()
		req.ResponseHeaders = flatten(bw.Header())
		if !bw.streamed && isJSON(bw.Header()) && bw.body.Len() <= MaxBodySize {
			req.ResponseBody = bw.body.Bytes()
		}
		for _, n := range names {
			if err := m.ask(ctx, n, resMethod, req); err != nil {
				if bw.streamed {
					log.G(ctx).WithField("plugin", n).WithError(err).Warnf("response to %s %s refused after it was streamed", r.Method, r.RequestURI)
					return nil
				}
				return err
			}
		}
		return bw.flushAll()
	}
}

func stillIn(names, current []string) []string {
	out := names[:0:0]
	for _, n := range names {
		for _, c := range current {
			if c == n {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// ask calls one plugin and turns anything but an explicit allow into an error: Forbidden for a denial
// (dockerd's "authorization denied by plugin <name>: <msg>"), a plain error (500) for a plugin that
// failed, so the request is never let through by accident.
func (m *Middleware) ask(ctx context.Context, name, method string, req *Request) error {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	p, err := m.getter.Lookup(ctx, name, Capability)
	if err != nil {
		return fmt.Errorf("plugin %s failed with error: %s", name, err)
	}
	var res Response
	if err := p.Client().CallContext(ctx, method, req, &res); err != nil {
		// The plugin client names the method already: "plugin p failed with error: AuthZPlugin.AuthZReq: ...".
		return fmt.Errorf("plugin %s failed with error: %s", p.Name(), err)
	}
	if res.Err != "" {
		return denied(p.Name(), res.Err)
	}
	if !res.Allow {
		return denied(p.Name(), res.Msg)
	}
	return nil
}

func denied(plugin, msg string) error {
	return errdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("authorization denied by plugin %s: %s", plugin, msg))
}

// newRequest builds the AuthZReq payload. The body is sent when it is JSON and small, and put back for
// the handler either way.
func newRequest(r *http.Request) (*Request, error) {
	req := &Request{
		RequestMethod:  r.Method,
		RequestURI:     r.RequestURI,
		RequestHeaders: flatten(r.Header),
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.User = r.TLS.PeerCertificates[0].Subject.CommonName
		req.UserAuthNMethod = "TLS"
		for _, c := range r.TLS.PeerCertificates {
			req.RequestPeerCertificates = append(req.RequestPeerCertificates, (*PeerCert)(c))
		}
	}
	if r.Body != nil && r.Body != http.NoBody && isJSON(r.Header) && !strings.HasSuffix(r.URL.Path, "/auth") {
		buf, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("error reading request body: " + err.Error())
		}
		if len(buf) <= MaxBodySize {
			req.RequestBody = buf
		}
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	}
	return req, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// flatten keeps the last value of each header and leaves registry credentials out, as dockerd does.
func flatten(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		if http.CanonicalHeaderKey(k) == "X-Registry-Auth" || len(vs) == 0 {
			continue
		}
		out[k] = vs[len(vs)-1]
	}
	return out
}
