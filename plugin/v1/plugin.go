package v1

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/plugin/getter"
)

// Plugin is one legacy plugin, known by name for the registry's lifetime. It is a getter.CompatPlugin
// and its own getter.Client.
//
// Concurrency: sem is the per-name lock, held only while (re)activating, so a slow plugin never delays
// lookups of another; mu guards the fields and is never held during I/O. Calls run concurrently.
type Plugin struct {
	name   string
	socket string // a fixed unix socket (NewSocketPlugin); "" when found by name in reg's directories
	reg    *Registry
	sem    chan struct{}

	mu          sync.Mutex
	ep          *endpoint // nil until activated, and after the plugin was found gone or replaced
	implements  []string
	activations uint64
	failures    int // calls in a row that could not reach the plugin
	downUntil   time.Time
	lastErr     error
	probing     bool
	hooks       map[uint64]func(context.Context)
	nextHook    uint64
	// What tells a restarted plugin from one that was only slow: a unix socket file is re-created by a
	// new instance (prevID changes); a tcp plugin refused a connection since its last activation.
	prevID        socketID
	connectFailed bool
	// downSock is the socket file the plugin last failed on while marked unavailable: a different file
	// there is a new instance, tried at once instead of after the cool-down.
	downSock socketID

	stats Stats
}

// Stats count a plugin's calls, for metrics and diagnostics.
type Stats struct {
	Calls       uint64        // calls made (activations excluded)
	Errors      uint64        // calls that failed, for any reason
	Unavailable uint64        // calls that failed because the plugin could not be reached or timed out
	Latency     time.Duration // total time spent in calls
}

// Stats returns the plugin's call counters.
func (p *Plugin) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Plugin) account(start time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Calls++
	p.stats.Latency += time.Since(start)
	if err != nil {
		p.stats.Errors++
		if errdefs.IsUnavailable(err) {
			p.stats.Unavailable++
		}
	}
}

var _ getter.CompatPlugin = (*Plugin)(nil)

// Name is the plugin's name (its file name in the socket or spec dir).
func (p *Plugin) Name() string { return p.name }

// ScopedPath returns path unchanged: legacy plugins see the host's filesystem.
func (p *Plugin) ScopedPath(path string) string { return path }

// IsV1 is true: this is a legacy plugin.
func (p *Plugin) IsV1() bool { return true }

// Client is the plugin itself.
func (p *Plugin) Client() getter.Client { return p }

// Implements is what the last activation reported.
func (p *Plugin) Implements() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.implements...)
}

// Activations counts successful /Plugin.Activate handshakes (1 unless the plugin restarted).
func (p *Plugin) Activations() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.activations
}

// OnRestart registers fn to run (in its own goroutine) each time a new instance of the plugin is
// activated (a re-created socket, or a tcp plugin that refused connections), e.g. to re-mount volumes
// that were mounted on the old instance. A plugin that was only marked unavailable for hanging does not
// trigger it. It returns a function that
// unregisters fn.
func (p *Plugin) OnRestart(fn func(ctx context.Context)) (unregister func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hooks == nil {
		p.hooks = map[uint64]func(context.Context){}
	}
	id := p.nextHook
	p.nextHook++
	p.hooks[id] = fn
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.hooks, id)
	}
}

// Activate makes sure the plugin is activated (performing the /Plugin.Activate handshake when it is
// not, or when it restarted since) and returns what it implements. Errors as CallContext's.
func (p *Plugin) Activate(ctx context.Context) ([]string, error) {
	if _, err := p.ready(ctx); err != nil {
		if errdefs.IsNotFound(err) {
			// As in CallContext: for whoever holds the plugin, one whose files are gone is unreachable.
			err = p.unavailable(errors.New("its socket or spec file is gone"))
		}
		return nil, err
	}
	return p.Implements(), nil
}

func (p *Plugin) hasCapability(capability string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, i := range p.implements {
		if strings.EqualFold(i, capability) {
			return true
		}
	}
	return false
}

// CallContext POSTs /method with args as JSON and decodes the reply into ret. See getter.Client.
//
// A call that cannot reach the plugin re-discovers and re-activates it once (a restarted plugin, a
// socket that moved) and is sent again: that is safe because the request never reached the plugin.
// Errors: Unavailable when the plugin cannot be reached or does not answer in time (and then it counts
// toward marking the plugin unavailable), NotFound for a 404, otherwise `<method>: <plugin's message>`.
func (p *Plugin) CallContext(ctx context.Context, method string, args, ret any) (err error) {
	start := time.Now()
	defer func() { p.account(start, err) }()
	method = strings.TrimPrefix(method, "/")
	ep, err := p.ready(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			err = p.unavailable(errors.New("its socket or spec file is gone"))
		}
		return err
	}
	oc, err := p.do(ctx, ep, method, args, ret)
	if oc == notSent && ctx.Err() == nil {
		p.invalidate(ep)
		p.mu.Lock()
		p.connectFailed = true
		p.mu.Unlock()
		log.G(ctx).WithField("plugin", p.name).WithError(err).Info("plugin unreachable, looking it up again")
		if ep, err = p.ready(ctx); err != nil {
			if errdefs.IsNotFound(err) {
				// The caller holds this plugin: for it, a plugin whose files are gone is unreachable.
				err = p.unavailable(errors.New("its socket or spec file is gone"))
				p.recordFailure(ctx, err)
			}
			return err
		}
		oc, err = p.do(ctx, ep, method, args, ret)
	}
	switch {
	case oc == replied:
		p.recordSuccess()
		return err
	case ctx.Err() != nil:
		// The caller gave up: not the plugin's fault.
		return errors.Wrapf(ctx.Err(), "plugin %q: %s", p.name, method)
	default:
		if oc == notSent {
			p.invalidate(ep)
		}
		err = p.unavailable(err)
		p.recordFailure(ctx, err)
		return err
	}
}

// downError is the fail-fast error of a plugin marked unavailable (class Unavailable). It is already
// logged once, when the plugin was marked, so listings skip it quietly.
type downError struct{ msg string }

func (e *downError) Error() string { return e.msg }
func (e *downError) Unavailable()  {}

// IsMarkedUnavailable reports whether err comes from a plugin marked unavailable (failing fast).
func IsMarkedUnavailable(err error) bool {
	var d *downError
	return errors.As(err, &d)
}

// unavailableError is a failure to reach the plugin (class Unavailable). It keeps its cause, so that a
// hung activation can be told from a refused connection.
type unavailableError struct {
	msg   string
	cause error
}

func (e *unavailableError) Error() string { return e.msg }
func (e *unavailableError) Unwrap() error { return e.cause }
func (e *unavailableError) Unavailable()  {}

func (p *Plugin) unavailable(err error) error {
	return &unavailableError{msg: fmt.Sprintf("plugin %q is unavailable: %v", p.name, err), cause: err}
}

func (p *Plugin) do(ctx context.Context, ep *endpoint, method string, args, ret any) (oc outcome, err error) {
	defer observeCall(p.name, method, time.Now(), &oc, &err)
	d := p.reg.cfg.Timeouts.For(method)
	if method == "Plugin.Activate" {
		d = p.reg.cfg.Timeouts.Activate
	}
	cctx, cancel := context.WithTimeoutCause(ctx, d, &timeoutError{method: method, d: d})
	defer cancel()
	oc, err = ep.call(cctx, &p.reg.cfg, method, args, ret)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		return lost, context.Cause(cctx)
	}
	if err != nil && oc != replied {
		err = errors.Wrapf(err, "%s", method)
	}
	return oc, err
}

// ready returns the active endpoint, activating the plugin first if needed. While the plugin is marked
// unavailable it fails at once.
func (p *Plugin) ready(ctx context.Context) (*endpoint, error) {
	if ep, err := p.current(); ep != nil || err != nil {
		return ep, err
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, errors.Wrapf(ctx.Err(), "plugin %q: waiting for activation", p.name)
	}
	defer func() { <-p.sem }()
	if ep, err := p.current(); ep != nil || err != nil {
		return ep, err
	}
	ep, err := p.activate(ctx)
	if err != nil {
		// A caller's deadline that ends an activation counts against the plugin (Activate should be
		// instant), so that a plugin hung in Activate stops costing every listing its full deadline.
		if !errdefs.IsNotFound(err) && !errors.Is(ctx.Err(), context.Canceled) {
			p.recordFailure(ctx, err)
		}
		return nil, err
	}
	return ep, nil
}

// current is the active endpoint, or the fail-fast error while the plugin is marked unavailable. A
// plugin marked unavailable whose socket file was re-created since (it restarted) is not failed: the
// caller activates it at once rather than waiting for the background probe's next attempt.
func (p *Plugin) current() (*endpoint, error) {
	p.mu.Lock()
	ep, down, downSock, lastErr := p.ep, p.probing || time.Now().Before(p.downUntil), p.downSock, p.lastErr
	p.mu.Unlock()
	if ep != nil {
		return ep, nil
	}
	if !down {
		return nil, nil
	}
	if id, ok := p.socketNow(); ok && id != downSock {
		return nil, nil
	}
	// While the probe runs it alone tries the plugin (callers would only queue behind its attempt).
	return nil, &downError{fmt.Sprintf("plugin %q is unavailable (retrying in the background): %v", p.name, lastErr)}
}

// socketNow identifies the unix socket the plugin listens on now (a few stats); false for a tcp plugin
// or when there is no socket.
func (p *Plugin) socketNow() (socketID, bool) {
	addr, err := p.locate()
	if err != nil || addr.network != "unix" {
		return socketID{}, false
	}
	id, err := statSocket(addr.dialAddr)
	return id, err == nil
}

// locate is where the plugin listens now. NotFound when its socket or spec file is gone: a probe then
// stops waiting for it.
func (p *Plugin) locate() (*address, error) {
	if p.socket == "" {
		return lookup(&p.reg.cfg, p.name)
	}
	if fi, err := os.Stat(p.socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q: no socket at %s", p.name, p.socket))
	}
	return unixAddress(p.socket), nil
}

// activate looks the plugin up on disk and performs the handshake. Callers hold sem.
func (p *Plugin) activate(ctx context.Context) (*endpoint, error) {
	addr, err := p.locate()
	if err != nil {
		return nil, err
	}
	ep, err := newEndpoint(addr)
	if err != nil {
		return nil, p.unavailable(errors.Wrap(err, "Plugin.Activate"))
	}
	var reply struct{ Implements []string }
	oc, err := p.do(ctx, ep, "Plugin.Activate", nil, &reply)
	if err != nil {
		ep.close()
		if oc != replied {
			return nil, p.unavailable(err)
		}
		return nil, errors.Wrapf(err, "plugin %q: activation failed", p.name)
	}
	p.mu.Lock()
	p.ep = ep
	p.implements = reply.Implements
	p.activations++
	n := p.activations
	restarted := n > 1 && (ep.id != p.prevID || (addr.network != "unix" && p.connectFailed))
	p.prevID, p.connectFailed = ep.id, false
	p.failures, p.downUntil, p.lastErr = 0, time.Time{}, nil
	var hooks []func(context.Context)
	if restarted {
		for _, h := range p.hooks {
			hooks = append(hooks, h)
		}
	}
	p.mu.Unlock()
	l := log.G(ctx).WithField("plugin", p.name).WithField("address", addr.source)
	switch {
	case n == 1:
		l.WithField("implements", reply.Implements).Debug("plugin activated")
	case restarted:
		l.WithField("activations", n).Info("plugin re-activated after a restart")
	default:
		l.WithField("activations", n).Info("plugin answers again")
	}
	for _, h := range hooks {
		go h(p.reg.ctx)
	}
	return ep, nil
}

// invalidate drops ep if it is still the active endpoint, so the next call re-discovers the plugin.
func (p *Plugin) invalidate(ep *endpoint) {
	p.mu.Lock()
	if p.ep == ep {
		p.ep = nil
	}
	p.mu.Unlock()
	ep.close()
}

func (p *Plugin) recordSuccess() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = 0
}

// recordFailure counts a call that could not reach the plugin; at the threshold the plugin is marked
// unavailable and a probe starts waiting for it in the background. An activation that ran out of time
// marks it at once: Activate does no work, so a plugin that does not answer it is hung, and every caller
// behind would wait out the whole deadline again.
func (p *Plugin) recordFailure(ctx context.Context, err error) {
	sock, _ := p.socketNow()
	var te *timeoutError
	hungActivate := errors.As(err, &te) && te.method == "Plugin.Activate"
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures++
	p.lastErr = err
	p.downSock = sock
	if hungActivate {
		p.failures = max(p.failures, p.reg.cfg.FailureThreshold)
	}
	if p.failures < p.reg.cfg.FailureThreshold || p.probing {
		return
	}
	if p.ep != nil {
		p.ep.close()
		p.ep = nil
	}
	p.downUntil = time.Now().Add(p.reg.cfg.Cooldown)
	p.probing = true
	log.G(ctx).WithField("plugin", p.name).WithError(err).Warnf(
		"plugin failed %d times in a row, marked unavailable; retrying in the background", p.failures)
	go p.probe()
}

// probe waits out the cool-down and tries to activate the plugin, extending the cool-down while it stays
// dead. It ends when the plugin answers, when its files are gone, or when the registry is closed.
func (p *Plugin) probe() {
	ctx := context.WithValue(p.reg.ctx, singleAttempt{}, true)
	for {
		p.mu.Lock()
		wait := time.Until(p.downUntil)
		p.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		p.mu.Lock()
		active := p.ep != nil
		p.mu.Unlock()
		var err error
		if !active {
			_, err = p.activate(ctx)
		}
		<-p.sem
		sock, _ := p.socketNow()
		p.mu.Lock()
		switch {
		case err == nil:
			p.probing = false
			p.mu.Unlock()
			return
		case ctx.Err() != nil:
			p.probing = false
			p.mu.Unlock()
			return
		case errdefs.IsNotFound(err):
			// Its files are gone: nothing to wait for; lookups now fail fast with NotFound.
			p.probing, p.failures, p.downUntil = false, 0, time.Time{}
			p.mu.Unlock()
			return
		default:
			p.lastErr = err
			p.downSock = sock
			p.downUntil = time.Now().Add(p.reg.cfg.Cooldown)
			p.mu.Unlock()
		}
	}
}
