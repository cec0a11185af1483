// Package events owns the daemon's event bus: services publish, API clients subscribe with filters, and a
// ring buffer serves `since`/`until` replays. Publishing never blocks on a slow subscriber: one that falls
// more than its buffer behind is dropped (its stream ends) rather than stalling the daemon.
package events

import (
	"sync"
	"time"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
)

const (
	// ringSize is how many past events a `since` query can replay (dockerd keeps 256).
	ringSize = 1024
	// subBuffer is how far a subscriber may lag before it is dropped.
	subBuffer = 4096
)

// Events is the bus. The zero value is not usable; call New.
type Events struct {
	mu   sync.Mutex
	ring []eventtypes.Message
	next int
	full bool
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch     chan eventtypes.Message
	filter func(eventtypes.Message) bool
}

// New returns an empty bus.
func New() *Events {
	return &Events{ring: make([]eventtypes.Message, ringSize), subs: map[*subscriber]struct{}{}}
}

// Log publishes an event about actor, stamped now, scope local. Container and image events also get the
// legacy status/id/from fields that old clients read.
func (e *Events) Log(action string, typ eventtypes.Type, actor eventtypes.Actor) {
	now := time.Now().UTC()
	if actor.Attributes == nil {
		actor.Attributes = map[string]string{}
	}
	m := eventtypes.Message{
		Type: typ, Action: action, Actor: actor, Scope: "local",
		Time: now.Unix(), TimeNano: now.UnixNano(),
	}
	if typ == eventtypes.ContainerEventType || typ == eventtypes.ImageEventType {
		m.Status, m.ID, m.From = action, actor.ID, actor.Attributes["image"]
	}
	e.Publish(m)
}

// Publish records m and hands it to every matching subscriber.
func (e *Events) Publish(m eventtypes.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ring[e.next] = m
	e.next = (e.next + 1) % ringSize
	if e.next == 0 {
		e.full = true
	}
	for s := range e.subs {
		if s.filter != nil && !s.filter(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			delete(e.subs, s)
			close(s.ch)
		}
	}
}

// Subscribe returns the buffered events matching filter, and a channel of new ones, atomically (no event is
// both replayed and delivered, none is missed). cancel ends the subscription; the channel is closed then,
// or earlier if the subscriber fell too far behind.
func (e *Events) Subscribe(filter func(eventtypes.Message) bool) (past []eventtypes.Message, ch <-chan eventtypes.Message, cancel func()) {
	s := &subscriber{ch: make(chan eventtypes.Message, subBuffer), filter: filter}
	e.mu.Lock()
	defer e.mu.Unlock()
	past = e.snapshotLocked(filter)
	e.subs[s] = struct{}{}
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if _, ok := e.subs[s]; ok {
				delete(e.subs, s)
				close(s.ch)
			}
		})
	}
	return past, s.ch, cancel
}

// Past returns the buffered events matching filter, oldest first.
func (e *Events) Past(filter func(eventtypes.Message) bool) []eventtypes.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snapshotLocked(filter)
}

func (e *Events) snapshotLocked(filter func(eventtypes.Message) bool) []eventtypes.Message {
	var out []eventtypes.Message
	start, n := 0, e.next
	if e.full {
		start, n = e.next, ringSize
	}
	for i := 0; i < n; i++ {
		m := e.ring[(start+i)%ringSize]
		if filter == nil || filter(m) {
			out = append(out, m)
		}
	}
	return out
}

// SubscribersCount is shown by /info as NEventsListener.
func (e *Events) SubscribersCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// SubscribeTopic is Subscribe for the API: events matching f, replayed from since (zero: no replay) and
// not after until (zero: no end).
func (e *Events) SubscribeTopic(since, until time.Time, f filters.Args) ([]eventtypes.Message, <-chan eventtypes.Message, func()) {
	match := func(m eventtypes.Message) bool { return Match(f, m) }
	past, ch, cancel := e.Subscribe(match)
	if since.IsZero() {
		return nil, ch, cancel
	}
	var kept []eventtypes.Message
	for _, m := range past {
		t := time.Unix(0, m.TimeNano)
		if t.Before(since) || (!until.IsZero() && t.After(until)) {
			continue
		}
		kept = append(kept, m)
	}
	return kept, ch, cancel
}
