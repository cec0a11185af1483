package network

import (
	"context"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A 10,000-character network name is a 400 naming the limit, as for containers and volumes, and creates
// nothing.
func TestNetworkNameLength(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := d.Client(t)
	ctx := context.Background()
	_, err := c.NetworkCreate(ctx, strings.Repeat("n", 10000), network.CreateOptions{})
	assert.Check(t, errdefs.IsInvalidParameter(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "invalid name: name is 10000 characters long, the limit is 255 characters"))
	_, err = c.NetworkCreate(ctx, strings.Repeat("n", 255), network.CreateOptions{})
	assert.NilError(t, err)
	l, err := c.NetworkList(ctx, network.ListOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(l, 4), "bridge, host, none and the 255-character one")
}
