package volume

import (
	"context"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"gotest.tools/v3/assert"
)

func TestVolumeEvents(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	since := time.Now()

	_, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: "ev1"})
	assert.NilError(t, err)
	_, err = c.VolumeCreate(ctx, volume.CreateOptions{Name: "ev1"}) // exists: no second event
	assert.NilError(t, err)
	assert.NilError(t, c.VolumeRemove(ctx, "ev1", false))
	anon, err := c.VolumeCreate(ctx, volume.CreateOptions{})
	assert.NilError(t, err)
	_, err = c.VolumesPrune(ctx, filters.NewArgs())
	assert.NilError(t, err)

	msgs, errs := c.Events(ctx, events.ListOptions{
		Since:   since.Format(time.RFC3339Nano),
		Until:   time.Now().Add(time.Second).Format(time.RFC3339Nano),
		Filters: filters.NewArgs(filters.Arg("type", "volume")),
	})
	var got []string
loop:
	for {
		select {
		case m := <-msgs:
			got = append(got, string(m.Action)+" "+m.Actor.ID+" "+m.Actor.Attributes["driver"])
		case err := <-errs:
			if err != nil && err.Error() != "EOF" {
				assert.NilError(t, err)
			}
			break loop
		}
	}
	assert.DeepEqual(t, got, []string{
		"create ev1 local",
		"destroy ev1 local",
		"create " + anon.Name + " local",
		"destroy " + anon.Name + " local",
		"prune  ",
	})
}
