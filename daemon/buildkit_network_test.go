package daemon

import (
	"sync"
	"testing"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type recordedEvents []string

func (r *recordedEvents) Log(action string, typ eventtypes.Type, actor eventtypes.Actor) {
	*r = append(*r, action+" "+actor.Attributes["container"])
}

// A RUN step's sandbox joins and leaves the bridge without network events; containers' still have them.
func TestBuildSandboxEvents(t *testing.T) {
	var rec recordedEvents
	live := &sync.Map{}
	f := buildSandboxEvents{next: &rec, live: live}
	live.Store("build1", struct{}{})
	f.Log("connect", "network", eventtypes.Actor{ID: "net", Attributes: map[string]string{"container": "build1"}})
	f.Log("connect", "network", eventtypes.Actor{ID: "net", Attributes: map[string]string{"container": "ctr1"}})
	f.Log("create", "network", eventtypes.Actor{ID: "net"})
	f.Log("disconnect", "network", eventtypes.Actor{ID: "net", Attributes: map[string]string{"container": "build1"}})
	live.Delete("build1")
	f.Log("disconnect", "network", eventtypes.Actor{ID: "net", Attributes: map[string]string{"container": "ctr1"}})
	assert.Check(t, is.DeepEqual([]string(rec), []string{"connect ctr1", "create ", "disconnect ctr1"}))
}
