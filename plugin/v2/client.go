package v2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/plugin/getter"
	v1 "github.com/berthd/berthd/plugin/v1"
)

// Client calls a managed plugin over its socket: POST /<method>, JSON in, JSON out, the same protocol as
// legacy plugins (replies decoded with plugin/v1's rules). Every call has a deadline: the enable timeout
// when one was given, otherwise v1's per-method defaults.
type Client struct {
	socket   string
	timeout  time.Duration
	timeouts v1.Timeouts
	http     *http.Client
}

var _ getter.Client = (*Client)(nil)

// NewClient returns a client for the unix socket at socketPath; timeout 0 means per-method defaults.
func NewClient(socketPath string, timeout time.Duration) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{socket: socketPath, timeout: timeout, timeouts: v1.DefaultTimeouts(), http: &http.Client{Transport: tr}}
}

// Socket is the host path of the plugin's socket.
func (c *Client) Socket() string { return c.socket }

const maxReply = 16 << 20

// CallContext implements getter.Client. Errors: Unavailable when the socket cannot be reached or the
// plugin does not answer in time, NotFound for a 404, else "<method>: <plugin's Err>".
func (c *Client) CallContext(ctx context.Context, method string, args, ret any) error {
	method = strings.TrimPrefix(method, "/")
	d := c.timeout
	if d <= 0 {
		d = c.timeouts.For(method)
	}
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var body io.Reader = http.NoBody
	if method != "Plugin.Activate" {
		if args == nil {
			args = struct{}{}
		}
		b, err := json.Marshal(args)
		if err != nil {
			return errors.Wrapf(err, "%s: encode request", method)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, "http://plugin.moby.localhost/"+method, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.docker.plugins.v1.2+json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cctx.Err() != nil {
			return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("%s: plugin did not answer within %v", method, d))
		}
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("%s: plugin not reachable: %v", method, err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("%s: read reply: %v", method, err))
	}
	if resp.StatusCode != http.StatusOK {
		text := method + ": " + errorText(b)
		if resp.StatusCode == http.StatusNotFound {
			return errdefs.ErrNotFound.WithMessage(text)
		}
		return errors.New(text)
	}
	if err := v1.DecodeReply(b, maxReply, ret); err != nil {
		return errors.Wrapf(err, "%s", method)
	}
	return nil
}

func errorText(b []byte) string {
	var e struct{ Err string }
	if json.Unmarshal(b, &e) == nil && e.Err != "" {
		return e.Err
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 4096 {
		s = s[:4096] + "..."
	}
	return s
}

// Activate runs the /Plugin.Activate handshake and returns what the plugin implements.
func (c *Client) Activate(ctx context.Context) ([]string, error) {
	var r struct{ Implements []string }
	if err := c.CallContext(ctx, "Plugin.Activate", nil, &r); err != nil {
		return nil, err
	}
	return r.Implements, nil
}
