package buildkit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	buildtypes "github.com/berthd/berthd/api/types/build"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/moby/buildkit/util/tracing"
	"github.com/pkg/errors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Stream IDs of POST /build?version=2's JSON messages, as dockerd names them: the CLI decodes the first's
// aux as a BuildKit StatusResponse and the second's as the image ID.
const (
	traceStreamID = "moby.buildkit.trace"
	imageIDStream = "moby.image.id"
)

// clientSessionRemote is the remote value with which a client says the context comes through its session.
const clientSessionRemote = "client-session"

// A client that reads the context from its stdin (docker build - < ctx.tar) sends it in a second request
// with build ID uploadRequestPrefix+ID, while the build itself says remote=uploadRequestRemote, buildid=ID.
const (
	uploadRequestPrefix = "upload-request:"
	uploadRequestRemote = "upload-request"
)

// uploadWait bounds how long one half of an upload pair waits for the other to arrive, as dockerd's.
const uploadWait = 5 * time.Second

// cacheOnlyOutput skips every exporter.
const cacheOnlyOutput = "cacheonly"

// contextHost is the host of the internal URLs under which a request body is served to BuildKit's HTTP
// source as the build context; it never reaches the network.
const contextHost = "berthd-build-context.invalid"

// jobs tracks running legacy builds by build ID for POST /build/cancel.
type jobs struct {
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
}

func (j *jobs) add(id string, cancel context.CancelFunc) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cancels == nil {
		j.cancels = map[string]context.CancelFunc{}
	}
	if _, ok := j.cancels[id]; ok {
		return errors.Wrapf(errdefs.ErrAlreadyExists, "build %s is already running", id)
	}
	j.cancels[id] = cancel
	return nil
}

func (j *jobs) remove(id string) {
	j.mu.Lock()
	delete(j.cancels, id)
	j.mu.Unlock()
}

// Cancel stops the legacy build with this build ID; an unknown ID is not an error (dockerd answers 200).
func (b *BuildKit) Cancel(ctx context.Context, id string) error {
	b.jobs.mu.Lock()
	cancel := b.jobs.cancels[id]
	b.jobs.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// Build is POST /build?version=2: the query mapped to the Dockerfile frontend's attributes as dockerd maps
// them, solved with the client's session, BuildKit's status updates streamed as "moby.buildkit.trace"
// messages and the image ID as "moby.image.id". It returns the image ID ("" when nothing was exported
// into the image store).
func (b *BuildKit) Build(ctx context.Context, opts buildtypes.Options, body io.Reader, out func(imagetypes.JSONMessage)) (string, error) {
	if err := b.Ready(ctx); err != nil {
		return "", err
	}
	if id, ok := strings.CutPrefix(opts.BuildID, uploadRequestPrefix); ok {
		return "", b.uploads.receive(ctx, b.root, id, body)
	}
	var ctxFile *os.File
	if opts.Remote == uploadRequestRemote {
		f, err := b.uploads.take(ctx, opts.BuildID)
		if err != nil {
			return "", err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		ctxFile, opts.Remote = f, ""
	}
	req, err := solveRequest(opts, b.entitlements, b.hostGatewayIP)
	if err != nil {
		return "", err
	}
	if opts.Remote == "" {
		if ctxFile == nil {
			// Spooled first: once the first status message is flushed, net/http no longer lets the
			// handler read the request body.
			f, err := spool(b.root, body)
			if err != nil {
				return "", err
			}
			defer os.Remove(f.Name())
			defer f.Close()
			ctxFile = f
		}
		url, done := b.bodies.serve(ctxFile)
		defer done()
		req.FrontendAttrs["context"] = url
	}
	id := opts.BuildID
	if id == "" {
		id = identity.NewID()
	}
	req.Ref = identity.NewID()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.jobs.add(id, cancel); err != nil {
		return "", err
	}
	defer b.jobs.remove(id)

	var resp *controlapi.SolveResponse
	eg, egctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var err error
		resp, err = b.ctrl.Solve(egctx, req)
		return err
	})
	eg.Go(func() error {
		return b.ctrl.Status(&controlapi.StatusRequest{Ref: req.Ref}, &statusStream{localStream: localStream{egctx}, send: func(r *controlapi.StatusResponse) error {
			dt, err := r.MarshalVT()
			if err != nil {
				return err
			}
			aux, _ := json.Marshal(dt)
			raw := json.RawMessage(aux)
			out(imagetypes.JSONMessage{ID: traceStreamID, Aux: &raw})
			return nil
		}})
	})
	if err := eg.Wait(); err != nil {
		return "", err
	}
	imageID := resp.ExporterResponse[exptypes.ExporterImageConfigDigestKey]
	if imageID != "" {
		aux, _ := json.Marshal(struct{ ID string }{imageID})
		raw := json.RawMessage(aux)
		out(imagetypes.JSONMessage{ID: imageIDStream, Aux: &raw})
	}
	return imageID, nil
}

// solveRequest maps POST /build's options to a SolveRequest for the Dockerfile frontend, as dockerd does.
// Options that only the classic builder's intermediate containers take are refused by name when set.
func solveRequest(opts buildtypes.Options, allowed []string, hostGatewayIP string) (*controlapi.SolveRequest, error) {
	for name, v := range map[string]int64{"memory": opts.Memory, "memswap": opts.MemorySwap, "cpushares": opts.CPUShares, "cpuperiod": opts.CPUPeriod, "cpuquota": opts.CPUQuota} {
		if v != 0 {
			return nil, errors.Wrapf(errdefs.ErrNotImplemented, "%s is not supported by BuildKit builds (version=2)", name)
		}
	}
	for name, v := range map[string]string{"cpusetcpus": opts.CPUSetCPUs, "cpusetmems": opts.CPUSetMems, "cgroupparent": opts.CgroupParent} {
		if v != "" {
			return nil, errors.Wrapf(errdefs.ErrNotImplemented, "%s is not supported by BuildKit builds (version=2)", name)
		}
	}
	attrs := map[string]string{}
	switch opts.Remote {
	case "", clientSessionRemote:
	default:
		attrs["context"] = opts.Remote
	}
	if opts.Remote == clientSessionRemote && opts.SessionID == "" {
		return nil, errors.Wrap(errdefs.ErrInvalidArgument, "remote=client-session needs a session")
	}
	if opts.Dockerfile != "" {
		attrs["filename"] = opts.Dockerfile
	}
	if opts.Target != "" {
		attrs["target"] = opts.Target
	}
	if opts.Platform != "" {
		if _, err := platforms.Parse(opts.Platform); err != nil {
			return nil, errors.Wrapf(errdefs.ErrInvalidArgument, "%q is an invalid platform: %v", opts.Platform, err)
		}
		attrs["platform"] = opts.Platform
	}
	if len(opts.CacheFrom) > 0 {
		attrs["cache-from"] = strings.Join(opts.CacheFrom, ",")
	}
	for k, v := range opts.BuildArgs {
		if v != nil {
			attrs["build-arg:"+k] = *v
		}
	}
	for k, v := range opts.Labels {
		attrs["label:"+k] = v
	}
	if opts.NoCache {
		attrs["no-cache"] = ""
	}
	attrs["image-resolve-mode"] = "default"
	if opts.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	switch opts.NetworkMode {
	case "host", "none":
		attrs["force-network-mode"] = opts.NetworkMode
	case "", "default":
	default:
		return nil, errors.Wrapf(errdefs.ErrNotImplemented, "network mode %q not supported by buildkit", opts.NetworkMode)
	}
	if len(opts.ExtraHosts) > 0 {
		hosts, err := extraHosts(opts.ExtraHosts, hostGatewayIP)
		if err != nil {
			return nil, err
		}
		attrs["add-hosts"] = hosts
	}
	if opts.ShmSize > 0 {
		attrs["shm-size"] = strconv.FormatInt(opts.ShmSize, 10)
	}
	if len(opts.Ulimits) > 0 {
		var ul []string
		for _, u := range opts.Ulimits {
			if u == nil {
				continue
			}
			ul = append(ul, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
		}
		attrs["ulimit"] = strings.Join(ul, ",")
	}

	exporterName := mobyExporter
	exporterAttrs := map[string]string{}
	if len(opts.Outputs) > 1 {
		return nil, errors.Wrap(errdefs.ErrInvalidArgument, "multiple outputs not supported")
	}
	if len(opts.Outputs) == 1 {
		exporterName = opts.Outputs[0].Type
		for k, v := range opts.Outputs[0].Attrs {
			exporterAttrs[k] = v
		}
	}
	if (exporterName == mobyExporter || exporterName == client.ExporterImage) && len(opts.Tags) > 0 {
		names, err := sanitizeNames(strings.Join(opts.Tags, ","))
		if err != nil {
			return nil, errors.Wrap(errdefs.ErrInvalidArgument, err.Error())
		}
		exporterAttrs[string(exptypes.OptKeyName)] = strings.Join(names, ",")
	}
	req := &controlapi.SolveRequest{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		Session:       opts.SessionID,
		Cache:         &controlapi.CacheOptions{},
	}
	if exporterName != cacheOnlyOutput {
		req.Exporters = []*controlapi.Exporter{{Type: exporterName, Attrs: exporterAttrs}}
	}
	if v := opts.BuildArgs["BUILDKIT_INLINE_CACHE"]; v != nil {
		if on, err := strconv.ParseBool(*v); err == nil && on {
			req.Cache.Exports = append(req.Cache.Exports, &controlapi.CacheOptionsEntry{Type: "inline"})
		}
	}
	if opts.NetworkMode == "host" {
		if !contains(allowed, string(entitlements.EntitlementNetworkHost)) {
			return nil, errors.Wrap(errdefs.ErrPermissionDenied, "network.host is not allowed: enable it with daemon.json's builder.entitlements.network-host")
		}
		req.Entitlements = append(req.Entitlements, string(entitlements.EntitlementNetworkHost))
	}
	return req, nil
}

// uploads pairs context uploads with the builds that use them.
type uploads struct {
	mu sync.Mutex
	m  map[string]*upload
}

type upload struct {
	started chan struct{} // closed when the upload request arrives
	ready   chan struct{} // closed when f or err is set
	taken   chan struct{} // closed when the build took f
	f       *os.File
	err     error
}

func (u *uploads) get(id string) *upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]*upload{}
	}
	up, ok := u.m[id]
	if !ok {
		up = &upload{started: make(chan struct{}), ready: make(chan struct{}), taken: make(chan struct{})}
		u.m[id] = up
	}
	return up
}

func (u *uploads) remove(id string) {
	u.mu.Lock()
	delete(u.m, id)
	u.mu.Unlock()
}

// receive spools an uploaded context and hands it to the build with the same ID, if one comes.
func (u *uploads) receive(ctx context.Context, dir, id string, body io.Reader) error {
	up := u.get(id)
	select {
	case <-up.started:
		return errors.Wrapf(errdefs.ErrAlreadyExists, "a context for build %s was already uploaded", id)
	default:
	}
	close(up.started)
	up.f, up.err = spool(dir, body)
	close(up.ready)
	if up.err != nil {
		return up.err
	}
	t := time.NewTimer(uploadWait)
	defer t.Stop()
	select {
	case <-up.taken:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	// Nobody came: the build may still be on its way; take it back only if it has not.
	u.mu.Lock()
	defer u.mu.Unlock()
	select {
	case <-up.taken:
		return nil
	default:
	}
	delete(u.m, id)
	up.f.Close()
	os.Remove(up.f.Name())
	return errors.Wrapf(errdefs.ErrNotFound, "no build %s took the uploaded context", id)
}

// take waits for the context uploaded for build id; the caller owns the file.
func (u *uploads) take(ctx context.Context, id string) (*os.File, error) {
	if id == "" {
		return nil, errors.Wrap(errdefs.ErrInvalidArgument, "remote=upload-request needs a buildid")
	}
	up := u.get(id)
	defer u.remove(id)
	t := time.NewTimer(uploadWait)
	defer t.Stop()
	select {
	case <-up.started:
	case <-t.C:
		return nil, errors.Wrapf(errdefs.ErrNotFound, "no context was uploaded for build %s", id)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-up.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if up.err != nil {
		return nil, up.err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.m[id]; !ok {
		return nil, errors.Wrapf(errdefs.ErrNotFound, "the context uploaded for build %s expired", id)
	}
	close(up.taken)
	return up.f, nil
}

// removeSpooled deletes contexts a previous run spooled and never removed (it was killed mid-build).
func removeSpooled(dir string) {
	old, _ := filepath.Glob(filepath.Join(dir, "context-*.tar"))
	for _, f := range old {
		_ = os.Remove(f)
	}
}

// spool copies a build context from the request body to a file under dir, rewound.
func spool(dir string, body io.Reader) (*os.File, error) {
	f, err := os.CreateTemp(dir, "context-*.tar")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, errors.Wrap(err, "reading the build context")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// hostGatewayLabel is the worker label carrying the address "host-gateway" stands for.
const hostGatewayLabel = "org.mobyproject.buildkit.worker.moby.host-gateway-ip"

// extraHosts turns "host:ip" (or "host=ip") entries into the frontend's "host=ip,..." list, "host-gateway"
// into the daemon's host-gateway address.
func extraHosts(list []string, hostGatewayIP string) (string, error) {
	var out []string
	for _, h := range list {
		host, ip, ok := strings.Cut(h, "=")
		if !ok {
			host, ip, ok = strings.Cut(h, ":")
		}
		if !ok || host == "" {
			return "", errors.Wrapf(errdefs.ErrInvalidArgument, "invalid extra host %q: expected host:ip", h)
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if ip == "host-gateway" {
			if hostGatewayIP == "" {
				return "", errors.Wrap(errdefs.ErrFailedPrecondition, "unable to derive the IP value for host-gateway: the daemon has no host-gateway address")
			}
			ip = hostGatewayIP
		}
		if net.ParseIP(ip) == nil {
			return "", errors.Wrapf(errdefs.ErrInvalidArgument, "invalid IP address in add-host: %q", ip)
		}
		out = append(out, host+"="+ip)
	}
	return strings.Join(out, ","), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// localStream is a gRPC server stream's plumbing for a call made in process: no headers, no transport.
type localStream struct{ ctx context.Context }

func (s localStream) Context() context.Context   { return s.ctx }
func (localStream) SetHeader(metadata.MD) error  { return nil }
func (localStream) SendHeader(metadata.MD) error { return nil }
func (localStream) SetTrailer(metadata.MD)       {}
func (localStream) SendMsg(any) error            { return errors.New("not a transport stream") }
func (localStream) RecvMsg(any) error            { return io.EOF }

var _ grpc.ServerStream = localStream{}

// statusStream is Control.Status's server stream, in process.
type statusStream struct {
	localStream
	send func(*controlapi.StatusResponse) error
}

func (s *statusStream) Send(r *controlapi.StatusResponse) error { return s.send(r) }

// SendMsg is what the controller calls for each status update.
func (s *statusStream) SendMsg(m any) error {
	r, ok := m.(*controlapi.StatusResponse)
	if !ok {
		return errors.Errorf("unexpected status message %T", m)
	}
	return s.send(r)
}

// bodies serves request bodies to BuildKit's HTTP source under internal URLs, each once: a build whose
// context is the request body (no remote, no session) reads it as a remote tar context.
type bodies struct {
	mu     sync.Mutex
	next   http.RoundTripper
	bodies map[string]io.Reader
}

func newBodies() *bodies {
	return &bodies{next: tracing.DefaultTransport, bodies: map[string]io.Reader{}}
}

func (t *bodies) serve(body io.Reader) (string, func()) {
	id := identity.NewID()
	t.mu.Lock()
	t.bodies[id] = body
	t.mu.Unlock()
	return "http://" + contextHost + "/" + id, func() {
		t.mu.Lock()
		delete(t.bodies, id)
		t.mu.Unlock()
	}
}

func (t *bodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != contextHost {
		return t.next.RoundTrip(req)
	}
	id := strings.TrimPrefix(req.URL.Path, "/")
	t.mu.Lock()
	body, ok := t.bodies[id]
	delete(t.bodies, id)
	t.mu.Unlock()
	if !ok {
		return nil, errors.Wrapf(errdefs.ErrNotFound, "build context %s was already read", id)
	}
	return &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       io.NopCloser(body),
		// The length is unknown, which tells the HTTP source to stream it.
		ContentLength: -1,
		Request:       req,
	}, nil
}
