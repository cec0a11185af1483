package containers

import (
	"testing"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/volume/mounts"
	"gotest.tools/v3/assert"
)

func TestCreationOrderPutsBindsFirst(t *testing.T) {
	spec := &ctypes.Mount{}
	mps := map[string]*mounts.MountPoint{
		"/b": {Destination: "/b", Spec: spec},
		"/a": {Destination: "/a"},
		"/z": {Destination: "/z"},
		"/c": {Destination: "/c", Spec: spec},
	}
	var got []string
	for _, mp := range creationOrder(mps) {
		got = append(got, mp.Destination)
	}
	assert.DeepEqual(t, got, []string{"/a", "/z", "/b", "/c"})
}
