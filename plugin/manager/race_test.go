package manager

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

// TestAcquireRacesDisable: volume creates (Acquire) racing `plugin disable` (no force). Whatever the
// interleaving, a disable that succeeded leaves no reference on the plugin it stopped, and an Acquire that
// succeeded made the disable fail as "in use". Run with -race (make test does) for the memory side.
func TestAcquireRacesDisable(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	p, err := m.resolve("vol")
	assert.NilError(t, err)

	for round := 0; round < 20; round++ {
		assert.NilError(t, m.Enable(ctx, "vol", 0))
		var acquired atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := m.Index().Acquire(ctx, "vol", getter.VolumeDriver)
				switch {
				case err == nil:
					acquired.Add(1)
				case errdefs.IsConflict(err):
				default:
					t.Errorf("acquire: %v", err)
				}
			}()
		}
		var derr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			derr = m.Disable(ctx, "vol", false)
		}()
		close(start)
		wg.Wait()

		n := int(acquired.Load())
		assert.Equal(t, p.RefCount(), n, "round %d", round)
		if derr == nil {
			assert.Equal(t, n, 0, "round %d: disable succeeded while %d references were taken", round, n)
			assert.Assert(t, !p.IsEnabled())
			continue
		}
		assert.Assert(t, errdefs.IsConflict(derr), "round %d: %v", round, derr)
		assert.Assert(t, n > 0, "round %d: disable refused without references: %v", round, derr)
		for i := 0; i < n; i++ {
			assert.NilError(t, m.Index().Release(ctx, "vol", getter.VolumeDriver))
		}
		assert.NilError(t, m.Disable(ctx, "vol", false))
	}
}
