package v1

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

// AcceptHeader is what dockerd sends (its docs say v1, its code sends v1.2).
const AcceptHeader = "application/vnd.docker.plugins.v1.2+json"

// errReplaced is returned by the dialer when the socket file is not the one the plugin was activated
// on: the plugin restarted, so it must be activated again before it is called.
var errReplaced = errors.New("plugin socket was replaced (plugin restarted)")

// dialError marks a failure before any byte reached the plugin, so the request may be sent again.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// socketID identifies one socket file: a restarted plugin re-creates it, and inode numbers alone may be
// reused by the filesystem, so the change time is part of the identity.
type socketID struct {
	dev, ino uint64
	ctime    int64
}

func statSocket(path string) (socketID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return socketID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return socketID{}, errors.Errorf("%s: not a socket", path)
	}
	return socketID{dev: uint64(st.Dev), ino: st.Ino, ctime: st.Ctim.Nano()}, nil //nolint:unconvert // Dev width varies by arch
}

// endpoint is one activated instance of a plugin: its address, and for unix sockets the identity of the
// socket file it was activated on. Connections are kept alive (a dial, an accept and a new server
// goroutine per call cost more than the call itself); a replaced socket is still noticed on every call,
// because each one stats the socket file first (a stat costs about a microsecond) and refuses to use the
// pooled connections of an endpoint whose file changed.
type endpoint struct {
	addr   *address
	id     socketID
	client *http.Client
}

func newEndpoint(a *address) (*endpoint, error) {
	ep := &endpoint{addr: a}
	if a.network == "unix" {
		id, err := statSocket(a.dialAddr)
		if err != nil {
			return nil, &dialError{err}
		}
		ep.id = id
	}
	ep.client = &http.Client{Transport: &http.Transport{
		DialContext:         ep.dial,
		MaxIdleConnsPerHost: maxIdleConns,
		IdleConnTimeout:     idleConnTimeout,
		TLSClientConfig:     a.tls,
		TLSHandshakeTimeout: 10 * time.Second,
		Proxy:               nil, // never route plugin calls through an HTTP proxy from the environment
	}}
	return ep, nil
}

// Idle connections kept per plugin: enough for the API's concurrent callers, few enough to not matter to
// the plugin; an idle one is closed after a while so that an unused plugin holds no connection.
const (
	maxIdleConns    = 16
	idleConnTimeout = 30 * time.Second
)

// check makes sure a unix socket is still the file the endpoint was activated on. When it is not, the
// pooled connections (to the old instance) are closed: nothing is sent on them any more.
func (ep *endpoint) check() error {
	if ep.addr.network != "unix" {
		return nil
	}
	id, err := statSocket(ep.addr.dialAddr)
	if err != nil {
		ep.close()
		return &dialError{err}
	}
	if id != ep.id {
		ep.close()
		return &dialError{errReplaced}
	}
	return nil
}

// close drops the endpoint's idle connections (it is being replaced, or its plugin is gone).
func (ep *endpoint) close() { ep.client.CloseIdleConnections() }

func (ep *endpoint) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	if err := ep.check(); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, ep.addr.network, ep.addr.dialAddr)
	if err != nil {
		return nil, &dialError{err}
	}
	return c, nil
}

// singleAttempt in a context makes a call try to connect once: the background probe retries on its own.
type singleAttempt struct{}

// outcome says how far a call got, which decides whether it may be re-sent and whether it counts as a
// failure of the plugin.
type outcome int

const (
	replied outcome = iota // the plugin answered (maybe with an error): it is alive
	notSent                // never reached the plugin: safe to re-send after re-activation
	lost                   // sent, but no (complete) answer: the plugin died or hung
)

// call POSTs one request, retrying only connection failures (bounded: ConnectAttempts tries with a short
// doubling backoff). Non-200 replies are never retried.
func (ep *endpoint) call(ctx context.Context, cfg *Config, method string, args, ret any) (outcome, error) {
	var body []byte
	if method != "Plugin.Activate" {
		if args == nil {
			body = []byte("{}")
		} else {
			b, err := json.Marshal(args)
			if err != nil {
				return replied, errors.Wrapf(err, "%s: encode request", method)
			}
			body = b
		}
	}
	backoff := cfg.ConnectBackoff
	attempts := cfg.ConnectAttempts
	if ctx.Value(singleAttempt{}) != nil {
		attempts = 1
	}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.addr.url(method), bytes.NewReader(body))
		if err != nil {
			return replied, errors.Wrapf(err, "%s", method)
		}
		req.Header.Set("Accept", AcceptHeader)
		var resp *http.Response
		if err = ep.check(); err == nil {
			resp, err = ep.client.Do(req)
		}
		if err != nil {
			var de *dialError
			if !errors.As(err, &de) {
				return lost, err
			}
			if errors.Is(err, errReplaced) || attempt >= attempts || ctx.Err() != nil {
				return notSent, de
			}
			log.G(ctx).WithError(de).Debugf("Unable to connect to plugin: %s/%s, retrying in %v", ep.addr.source, method, backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return notSent, de
			case <-t.C:
			}
			backoff *= 2
			continue
		}
		err = readReply(method, resp, ret, cfg.MaxReplySize)
		resp.Body.Close()
		var re *readError
		if errors.As(err, &re) {
			return lost, err
		}
		return replied, err
	}
}

// readError is a failure to read a reply body (connection lost mid-reply), as opposed to a bad reply.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// maxErrorBody caps how much of a non-200 body ends up in an error message.
const maxErrorBody = 4 << 10

func readReply(method string, resp *http.Response, ret any, limit int64) error {
	if resp.StatusCode != http.StatusOK {
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
		if err != nil {
			return &readError{errors.Wrapf(err, "%s: read reply", method)}
		}
		text := method + ": " + errorText(b)
		if resp.StatusCode == http.StatusNotFound {
			return errdefs.ErrNotFound.WithMessage(text)
		}
		return errors.New(text)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return &readError{errors.Wrapf(err, "%s: read reply", method)}
	}
	if err := DecodeReply(b, limit, ret); err != nil {
		return errors.Wrapf(err, "%s", method)
	}
	return nil
}

// errorText is the plugin's `Err` when the body is JSON carrying one, else the raw body (trimmed, capped).
func errorText(b []byte) string {
	var e struct{ Err string }
	if json.Unmarshal(b, &e) == nil && e.Err != "" {
		return e.Err
	}
	s := strings.TrimSpace(string(b))
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody] + "..."
	}
	return s
}

// DecodeReply decodes a 200 reply body into ret (which may be nil to only validate it). The body must be
// exactly one JSON value (`null` and `{}` are fine), not empty and not over limit bytes. Unknown fields
// are ignored: plugins in the field add their own, and dockerd accepts them.
func DecodeReply(b []byte, limit int64, ret any) error {
	if int64(len(b)) > limit {
		return errors.Errorf("reply larger than %d bytes", limit)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.Wrap(io.EOF, "empty reply")
	}
	if ret == nil {
		ret = new(json.RawMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(ret); err != nil {
		return errors.Wrap(err, "invalid reply")
	}
	var rest json.RawMessage
	if err := dec.Decode(&rest); err != io.EOF {
		return errors.New("invalid reply: data after the JSON value")
	}
	return nil
}

// timeoutError is the cause of a call's own deadline, to tell it from the caller's.
type timeoutError struct {
	method string
	d      time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s: no reply within %v", e.method, e.d)
}
