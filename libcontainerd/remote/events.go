package remote

import (
	"context"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"github.com/containerd/containerd/protobuf"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/grpc"

	"github.com/berthd/berthd/libcontainerd/types"
)

const (
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 2 * time.Second
)

// subscribe opens the namespace's task event stream. The raw gRPC API is used instead of the client's
// Subscribe because it reports when the stream is established, which is the moment after which no event
// can be missed (and when EventResync is due). With wait, it blocks until containerd is reachable.
func (c *client) subscribe(ctx context.Context, wait bool) (eventsapi.Events_SubscribeClient, error) {
	req := &eventsapi.SubscribeRequest{Filters: []string{
		"namespace==" + c.namespace,
		`topic~="|^/tasks/|"`,
	}}
	stream, err := eventsapi.NewEventsClient(c.ctd.Conn()).Subscribe(ctx, req, grpc.WaitForReady(wait))
	if err != nil {
		return nil, classify(err)
	}
	return stream, nil
}

// processEvents delivers events until Close, re-subscribing whenever the stream breaks (containerd
// restarted): containerd does not replay, so EventResync tells the receiver to reconcile.
func (c *client) processEvents(ctx context.Context, stream eventsapi.Events_SubscribeClient) {
	defer close(c.done)
	for {
		for {
			ev, err := stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.G(ctx).WithError(classify(err)).Warn("containerd event stream broke; resubscribing")
				break
			}
			c.dispatch(ctx, ev.Topic, ev.Event)
		}
		delay := resubscribeMin
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			var err error
			if stream, err = c.subscribe(c.nsCtx(ctx), true); err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.G(ctx).WithError(err).Debug("resubscribing to containerd events")
			if delay *= 2; delay > resubscribeMax {
				delay = resubscribeMax
			}
		}
		log.G(ctx).Info("containerd event stream re-established")
		c.queue.append("", func() { c.cb(ctx, types.EventResync, types.EventInfo{}) })
	}
}

// dispatch decodes one envelope and queues the callback behind the container's earlier events.
func (c *client) dispatch(ctx context.Context, topic string, event typeurl.Any) {
	if event == nil {
		return
	}
	v, err := typeurl.UnmarshalAny(event)
	if err != nil {
		log.G(ctx).WithError(err).WithField("topic", topic).Warn("undecodable containerd event")
		return
	}
	var (
		typ  types.EventType
		info types.EventInfo
	)
	switch e := v.(type) {
	case *apievents.TaskCreate:
		typ, info = types.EventCreate, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID, Pid: e.Pid}
	case *apievents.TaskStart:
		typ, info = types.EventStart, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID, Pid: e.Pid}
	case *apievents.TaskExit:
		typ, info = types.EventExit, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ID, Pid: e.Pid,
			ExitCode: e.ExitStatus, ExitedAt: protobuf.FromTimestamp(e.ExitedAt)}
	case *apievents.TaskOOM:
		typ, info = types.EventOOM, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID}
	case *apievents.TaskExecAdded:
		typ, info = types.EventExecAdded, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ExecID}
	case *apievents.TaskExecStarted:
		typ, info = types.EventExecStarted, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ExecID, Pid: e.Pid}
	case *apievents.TaskPaused:
		typ, info = types.EventPaused, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID}
	case *apievents.TaskResumed:
		typ, info = types.EventResumed, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID}
	case *apievents.TaskDelete:
		typ, info = types.EventTaskDeleted, types.EventInfo{ContainerID: e.ContainerID, ProcessID: e.ID, Pid: e.Pid,
			ExitCode: e.ExitStatus, ExitedAt: protobuf.FromTimestamp(e.ExitedAt)}
	default:
		log.G(ctx).WithField("topic", topic).Debug("ignoring containerd event")
		return
	}
	log.G(ctx).WithField("topic", topic).WithField("container", info.ContainerID).Debug("containerd event")
	c.queue.append(info.ContainerID, func() { c.cb(ctx, typ, info) })
}

// queue runs functions in order per key, different keys concurrently, so that one container's slow
// event handling never holds up another's.
type queue struct {
	mu      sync.Mutex
	pending map[string][]func()
}

func (q *queue) append(key string, f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string][]func(){}
	}
	fs, running := q.pending[key]
	q.pending[key] = append(fs, f)
	if !running {
		go q.run(key)
	}
}

func (q *queue) run(key string) {
	for {
		q.mu.Lock()
		fs := q.pending[key]
		if len(fs) == 0 {
			delete(q.pending, key)
			q.mu.Unlock()
			return
		}
		f := fs[0]
		q.pending[key] = fs[1:]
		q.mu.Unlock()
		f()
	}
}
