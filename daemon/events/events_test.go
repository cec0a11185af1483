package events

import (
	"testing"
	"time"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func msg(typ eventtypes.Type, action, id string, attrs map[string]string) eventtypes.Message {
	return eventtypes.Message{Type: typ, Action: action, Actor: eventtypes.Actor{ID: id, Attributes: attrs}, Scope: "local"}
}

func TestMatch(t *testing.T) {
	vol := msg(eventtypes.VolumeEventType, "create", "v1", map[string]string{"driver": "local"})
	ctr := msg(eventtypes.ContainerEventType, "start", "abcdef123", map[string]string{"name": "web", "image": "busybox", "env": "prod"})
	for _, tc := range []struct {
		name string
		f    filters.Args
		m    eventtypes.Message
		want bool
	}{
		{"no filter", filters.NewArgs(), vol, true},
		{"type", filters.NewArgs(filters.Arg("type", "volume")), vol, true},
		{"other type", filters.NewArgs(filters.Arg("type", "container")), vol, false},
		{"event", filters.NewArgs(filters.Arg("event", "create")), vol, true},
		{"other event", filters.NewArgs(filters.Arg("event", "destroy")), vol, false},
		{"volume by name", filters.NewArgs(filters.Arg("volume", "v1")), vol, true},
		{"container filter excludes volumes", filters.NewArgs(filters.Arg("container", "v1")), vol, false},
		{"container by id prefix", filters.NewArgs(filters.Arg("container", "abc")), ctr, true},
		{"container by name", filters.NewArgs(filters.Arg("container", "web")), ctr, true},
		{"label", filters.NewArgs(filters.Arg("label", "env=prod")), ctr, true},
		{"label mismatch", filters.NewArgs(filters.Arg("label", "env=dev")), ctr, false},
		{"scope", filters.NewArgs(filters.Arg("scope", "swarm")), ctr, false},
		{"two types ored", filters.NewArgs(filters.Arg("type", "volume"), filters.Arg("type", "container")), ctr, true},
	} {
		assert.Check(t, is.Equal(Match(tc.f, tc.m), tc.want), tc.name)
	}
}

func TestReplayAndSubscribe(t *testing.T) {
	e := New()
	e.Log("create", eventtypes.VolumeEventType, eventtypes.Actor{ID: "old"})
	time.Sleep(2 * time.Millisecond)
	mid := time.Now()
	e.Log("create", eventtypes.VolumeEventType, eventtypes.Actor{ID: "a"})
	e.Log("destroy", eventtypes.VolumeEventType, eventtypes.Actor{ID: "a"})

	past, ch, cancel := e.SubscribeTopic(mid, time.Time{}, filters.NewArgs(filters.Arg("event", "create")))
	defer cancel()
	assert.Assert(t, is.Len(past, 1))
	assert.Check(t, is.Equal(past[0].Actor.ID, "a"))
	assert.Check(t, past[0].Actor.Attributes != nil, "attributes are never null on the wire")
	assert.Check(t, is.Equal(e.SubscribersCount(), 1))

	e.Log("destroy", eventtypes.VolumeEventType, eventtypes.Actor{ID: "b"})
	e.Log("create", eventtypes.VolumeEventType, eventtypes.Actor{ID: "b"})
	select {
	case m := <-ch:
		assert.Check(t, is.Equal(m.Action, "create"))
		assert.Check(t, is.Equal(m.Actor.ID, "b"))
	case <-time.After(time.Second):
		t.Fatal("no live event")
	}
	cancel()
	_, ok := <-ch
	assert.Check(t, !ok, "cancel closes the channel")
	assert.Check(t, is.Equal(e.SubscribersCount(), 0))

	none, _, c2 := e.SubscribeTopic(time.Time{}, time.Time{}, filters.NewArgs())
	c2()
	assert.Check(t, is.Len(none, 0), "no since, no replay")
}

func TestLegacyFieldsAndRingWrap(t *testing.T) {
	e := New()
	e.Log("start", eventtypes.ContainerEventType, eventtypes.Actor{ID: "c1", Attributes: map[string]string{"image": "busybox"}})
	p := e.Past(nil)
	assert.Check(t, is.Equal(p[0].Status, "start"))
	assert.Check(t, is.Equal(p[0].ID, "c1"))
	assert.Check(t, is.Equal(p[0].From, "busybox"))

	for i := 0; i < ringSize+10; i++ {
		e.Log("create", eventtypes.VolumeEventType, eventtypes.Actor{ID: "v"})
	}
	assert.Check(t, is.Len(e.Past(nil), ringSize), "the ring keeps the newest ringSize events")
}

func TestSlowSubscriberIsDroppedNotBlocking(t *testing.T) {
	e := New()
	_, ch, cancel := e.Subscribe(nil)
	defer cancel()
	done := make(chan struct{})
	go func() {
		for i := 0; i < subBuffer+100; i++ {
			e.Log("create", eventtypes.VolumeEventType, eventtypes.Actor{ID: "v"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publishing blocked on a subscriber that does not read")
	}
	n := 0
	for range ch {
		n++
	}
	assert.Check(t, is.Equal(n, subBuffer), "the subscriber got what fit, then its stream ended")
}
