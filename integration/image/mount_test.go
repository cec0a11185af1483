package image

import (
	"strings"
	"testing"

	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestPushMountsSharedLayers: a second repository of the same registry gets the layers it shares with
// a repository pushed before by a cross-repository mount ("Mounted from"), not by sending them again;
// the same holds for layers the daemon pulled from that registry.
func TestPushMountsSharedLayers(t *testing.T) {
	reg := regtest.StartRegistry(t, "", "")
	_, c := startBusybox(t)
	nLayers := len(lines(c.ok("image", "inspect", "-f", "{{range .RootFS.Layers}}{{println .}}{{end}}", "busybox")))
	assert.Assert(t, nLayers > 1)

	c.ok("tag", "busybox", reg+"/one/bb:1")
	out := c.ok("push", reg+"/one/bb:1")
	assert.Check(t, is.Equal(strings.Count(out, ": Pushed"), nLayers), out)

	c.ok("tag", "busybox", reg+"/two/bb:1")
	out = c.ok("push", reg+"/two/bb:1")
	assert.Check(t, is.Equal(strings.Count(out, ": Mounted from one/bb"), nLayers), out)
	assert.Check(t, !strings.Contains(out, "Pushed"), out)

	// Pulled layers are remembered too: a fresh daemon pulls one/bb and pushes it as three/bb.
	d2 := daemon.New(t)
	d2.Start(t)
	c2 := cli{t, d2}
	c2.ok("pull", reg+"/one/bb:1")
	c2.ok("tag", reg+"/one/bb:1", reg+"/three/bb:1")
	out = c2.ok("push", reg+"/three/bb:1")
	assert.Check(t, is.Equal(strings.Count(out, ": Mounted from"), nLayers), out)
	assert.Check(t, !strings.Contains(out, "Pushed"), out)
	// What was mounted is really there.
	c2.ok("rmi", reg+"/one/bb:1", reg+"/three/bb:1")
	c2.ok("pull", reg+"/three/bb:1")
}
