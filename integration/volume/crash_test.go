package volume

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
)

// TestCrashKeepsAcknowledgedWrites: 8 clients create and remove volumes while berthd is SIGKILLed. After
// a restart every create that was answered 201 is there and every remove answered 204 is gone.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := d.Client(t)
	ctx := context.Background()

	type outcome int
	const (
		unknown outcome = iota
		created
		removed
	)
	var mu sync.Mutex
	state := map[string]outcome{}
	set := func(n string, o outcome) { mu.Lock(); state[n] = o; mu.Unlock() }

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked sync.WaitGroup
	acked.Add(8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			first := true
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%04d", w, i)
				set(name, unknown)
				if _, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: map[string]string{"w": fmt.Sprint(w)}}); err != nil {
					return // the daemon is gone
				}
				set(name, created)
				if first {
					first = false
					acked.Done()
				}
				if i%3 == 0 {
					set(name, unknown)
					if err := c.VolumeRemove(ctx, name, false); err != nil {
						set(name, created) // 404 is impossible here; a failed remove leaves it as it was, or unknown
						if !errdefs.IsNotFound(err) {
							set(name, unknown)
						}
						return
					}
					set(name, removed)
				}
			}
		}(w)
	}
	acked.Wait()
	time.Sleep(700 * time.Millisecond)
	d.Kill(t)
	close(stop)
	wg.Wait()

	d.Start(t)
	c = d.Client(t)
	var nCreated, nRemoved int
	for name, o := range state {
		_, err := c.VolumeInspect(ctx, name)
		switch o {
		case created:
			nCreated++
			assert.NilError(t, err, "volume %s was acknowledged (201) but is gone after the crash", name)
		case removed:
			nRemoved++
			assert.Assert(t, errdefs.IsNotFound(err), "volume %s was removed (204) but is back after the crash: %v", name, err)
		}
	}
	t.Logf("checked %d acknowledged creates and %d acknowledged removes", nCreated, nRemoved)
	assert.Assert(t, nCreated > 0)
	// The store is usable: list, create and remove work.
	list, err := c.VolumeList(ctx, volume.ListOptions{})
	assert.NilError(t, err)
	assert.Assert(t, len(list.Volumes) >= nCreated)
	_, err = c.VolumeCreate(ctx, volume.CreateOptions{Name: "after-crash"})
	assert.NilError(t, err)
	assert.NilError(t, c.VolumeRemove(ctx, "after-crash", false))
}
