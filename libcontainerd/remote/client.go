// Package remote implements libcontainerd/types on the containerd v1.7 Go client (it also works against
// containerd 1.6 daemons): one namespace per client, containers and tasks, stdio over FIFOs in
// caller-given directories (so a restarted daemon can reattach: live-restore), the namespace's task event
// stream (resubscribed when containerd restarts), and the one-time classification of containerd's gRPC
// errors into containerd/errdefs classes.
//
// It is the only libcontainerd package that imports the containerd client. It must not import daemon,
// api/server or any service package.
package remote

import (
	"context"
	"fmt"
	"sync"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/libcontainerd/types"
)

// dialTimeout bounds New's connection attempt.
const dialTimeout = 10 * time.Second

type client struct {
	ctd       *containerd.Client
	namespace string
	cb        types.EventCallback
	queue     queue

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var _ types.Client = (*client)(nil)

// New connects to the containerd socket at address (a path; a "unix://" prefix is accepted), scoped to
// namespace, and subscribes to the namespace's task events, which go to cb (nil: events are dropped).
// The dial is bounded (10 s, or ctx's deadline if sooner). The subscription outlives ctx: it ends with
// Close.
func New(ctx context.Context, address, namespace string, cb types.EventCallback) (types.Client, error) {
	if namespace == "" {
		return nil, invalidArg("containerd namespace must not be empty")
	}
	if err := identifiers.Validate(namespace); err != nil {
		return nil, classify(err)
	}
	timeout := dialTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	ctd, err := containerd.New(address, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(timeout), WithMetrics())
	if err != nil {
		// Whatever the dial says (refused, missing socket, deadline), for callers containerd is unavailable.
		return nil, errors.Wrapf(errdefs.ErrUnavailable, "connect to containerd at %s: %v", address, err)
	}
	if cb == nil {
		cb = func(context.Context, types.EventType, types.EventInfo) {}
	}
	c := &client{ctd: ctd, namespace: namespace, cb: cb, done: make(chan struct{})}
	ectx, cancel := context.WithCancel(log.WithLogger(context.WithoutCancel(ctx),
		log.G(ctx).WithField("module", "libcontainerd").WithField("namespace", namespace)))
	c.cancel = cancel
	stream, err := c.subscribe(c.nsCtx(ectx), false)
	if err != nil {
		cancel()
		ctd.Close()
		return nil, errors.Wrap(err, "subscribe to containerd events")
	}
	go c.processEvents(ectx, stream)
	return c, nil
}

// nsCtx scopes ctx to the client's namespace; every containerd call goes through it.
func (c *client) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.namespace)
}

func (c *client) Version(ctx context.Context) (string, error) {
	v, err := c.ctd.Version(c.nsCtx(ctx))
	if err != nil {
		return "", errors.Wrap(classify(err), "containerd version")
	}
	return v.Version, nil
}

func (c *client) Close() error {
	c.once.Do(func() {
		c.cancel()
		<-c.done
	})
	return c.ctd.Close()
}

func (c *client) Containers(ctx context.Context) ([]types.Container, error) {
	list, err := c.ctd.Containers(c.nsCtx(ctx))
	if err != nil {
		return nil, errors.Wrap(classify(err), "list containers")
	}
	out := make([]types.Container, 0, len(list))
	for _, ctr := range list {
		out = append(out, &container{c: c, ctr: ctr})
	}
	return out, nil
}

func (c *client) LoadContainer(ctx context.Context, id string) (types.Container, error) {
	ctr, err := c.ctd.LoadContainer(c.nsCtx(ctx), id)
	if err != nil {
		return nil, errors.Wrapf(classify(err), "load container %s", id)
	}
	return &container{c: c, ctr: ctr}, nil
}

func (c *client) NewContainer(ctx context.Context, id string, cfg types.ContainerConfig) (types.Container, error) {
	if cfg.Spec == nil {
		return nil, invalidArg(fmt.Sprintf("create container %s: no OCI spec", id))
	}
	if (cfg.Snapshotter == "") != (cfg.SnapshotKey == "") {
		return nil, invalidArg(fmt.Sprintf("create container %s: snapshotter and snapshot key go together", id))
	}
	runtime := cfg.Runtime
	if runtime == "" {
		runtime = types.DefaultRuntime
	}
	opts := []containerd.NewContainerOpts{
		containerd.WithSpec(cfg.Spec),
		containerd.WithRuntime(runtime, runcOptions(cfg.RuntimeOptions)),
	}
	if len(cfg.Labels) > 0 {
		opts = append(opts, containerd.WithContainerLabels(cfg.Labels))
	}
	if cfg.SnapshotKey != "" {
		opts = append(opts, containerd.WithSnapshotter(cfg.Snapshotter), containerd.WithSnapshot(cfg.SnapshotKey))
	}
	ctr, err := c.ctd.NewContainer(c.nsCtx(ctx), id, opts...)
	if err != nil {
		err = classify(err)
		if isAlreadyExists(err) {
			return nil, errors.Wrapf(err, "container %s already exists", id)
		}
		return nil, errors.Wrapf(err, "create container %s", id)
	}
	return &container{c: c, ctr: ctr}, nil
}
