// Package testsuite is the contract every volume.Driver must meet (the local driver, the plugin adapter,
// test fakes). Call Run from a test in the implementation's package. It imports only `volume` and test
// libraries.
package testsuite

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/berthd/berthd/volume"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Run checks newDriver's drivers against the volume.Driver contract. Each subtest gets a fresh driver.
func Run(t *testing.T, newDriver func(t *testing.T) volume.Driver) {
	ctx := context.Background()

	t.Run("NameAndScope", func(t *testing.T) {
		d := newDriver(t)
		assert.Assert(t, d.Name() != "")
		sc := d.Scope(ctx)
		assert.Assert(t, sc == volume.LocalScope || sc == volume.GlobalScope, "scope %q", sc)
	})

	t.Run("CreateGetListRemove", func(t *testing.T) {
		d := newDriver(t)
		v, err := d.Create(ctx, "contract-vol", nil)
		assert.NilError(t, err)
		assert.Equal(t, v.Name(), "contract-vol")
		assert.Equal(t, v.DriverName(), d.Name())

		got, err := d.Get(ctx, "contract-vol")
		assert.NilError(t, err)
		assert.Equal(t, got.Name(), "contract-vol")

		vols, err := d.List(ctx)
		assert.NilError(t, err)
		assert.Assert(t, is.Contains(names(vols), "contract-vol"))

		assert.NilError(t, d.Remove(ctx, v))
		_, err = d.Get(ctx, "contract-vol")
		assert.Assert(t, errdefs.IsNotFound(err), "Get after Remove: %v", err)
		vols, err = d.List(ctx)
		assert.NilError(t, err)
		assert.Assert(t, !contains(names(vols), "contract-vol"))
	})

	t.Run("CreateIsIdempotent", func(t *testing.T) {
		d := newDriver(t)
		_, err := d.Create(ctx, "twice", nil)
		assert.NilError(t, err)
		v, err := d.Create(ctx, "twice", nil)
		assert.NilError(t, err)
		assert.Equal(t, v.Name(), "twice")
		vols, err := d.List(ctx)
		assert.NilError(t, err)
		n := 0
		for _, x := range vols {
			if x.Name() == "twice" {
				n++
			}
		}
		assert.Equal(t, n, 1)
	})

	t.Run("GetUnknownIsNotFound", func(t *testing.T) {
		d := newDriver(t)
		_, err := d.Get(ctx, "does-not-exist")
		assert.Assert(t, errdefs.IsNotFound(err), "got %v", err)
	})

	t.Run("MountUnmount", func(t *testing.T) {
		d := newDriver(t)
		v, err := d.Create(ctx, "mounted", nil)
		assert.NilError(t, err)
		p, err := v.Mount(ctx, "id1")
		assert.NilError(t, err)
		assert.Assert(t, p != "")
		p2, err := v.Mount(ctx, "id2")
		assert.NilError(t, err)
		assert.Equal(t, p, p2)
		assert.NilError(t, v.Unmount(ctx, "id1"))
		assert.NilError(t, v.Unmount(ctx, "id2"))
		// An extra unmount must not break the count: a later mount/unmount pair still works and the
		// volume can be removed.
		assert.NilError(t, v.Unmount(ctx, "id2"))
		_, err = v.Mount(ctx, "id3")
		assert.NilError(t, err)
		assert.NilError(t, v.Unmount(ctx, "id3"))
		assert.NilError(t, d.Remove(ctx, v))
	})

	t.Run("CreatedAt", func(t *testing.T) {
		d := newDriver(t)
		v, err := d.Create(ctx, "dated", nil)
		assert.NilError(t, err)
		_, err = v.CreatedAt()
		assert.NilError(t, err)
	})

	t.Run("ConcurrentCreates", func(t *testing.T) {
		d := newDriver(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 20; i++ {
			for j := 0; j < 2; j++ { // two creators per name
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					_, err := d.Create(ctx, fmt.Sprintf("conc-%02d", i), nil)
					errs <- err
				}(i)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			assert.NilError(t, err)
		}
		vols, err := d.List(ctx)
		assert.NilError(t, err)
		n := 0
		for _, v := range vols {
			if len(v.Name()) == 7 && v.Name()[:5] == "conc-" {
				n++
			}
		}
		assert.Equal(t, n, 20)
	})
}

func names(vols []volume.Volume) []string {
	out := make([]string, 0, len(vols))
	for _, v := range vols {
		out = append(out, v.Name())
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
