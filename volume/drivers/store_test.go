package drivers

import (
	"context"
	"testing"
	"time"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/volume"
	"github.com/berthd/berthd/volume/testutil"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func TestNoPlugins(t *testing.T) {
	ctx := context.Background()
	_, err := NewStore(nil, nil)
	assert.ErrorContains(t, err, "a plugin getter and a plugin adapter are required")
	s := newStore(t, testutil.NewFakeGetter(), testutil.Adapter)
	assert.Assert(t, s.Register(testutil.NewFakeDriver("local")))
	assert.Assert(t, !s.Register(testutil.NewFakeDriver("local")), "a name registers once")
	d, err := s.GetDriver(ctx, "local")
	assert.NilError(t, err)
	assert.Equal(t, d.Name(), "local")
	_, err = s.GetDriver(ctx, "nope")
	assert.Error(t, err, `error looking up volume plugin nope: plugin "nope" not found`)
	assert.Assert(t, errdefs.IsNotFound(err))
	_, err = s.GetDriver(ctx, "")
	assert.Assert(t, errdefs.IsInvalidArgument(err))
	assert.DeepEqual(t, s.GetDriverList(), []string{"local"})
}

func newStore(t *testing.T, g getter.PluginGetter, adapt PluginAdapter) *Store {
	t.Helper()
	s, err := NewStore(g, adapt)
	assert.NilError(t, err)
	return s
}

func TestGetterErrorsAreWrapped(t *testing.T) {
	g := testutil.NewFakeGetter()
	s := newStore(t, g, testutil.Adapter)
	_, err := s.GetDriver(context.Background(), "X")
	assert.Error(t, err, `error looking up volume plugin X: plugin "X" not found`)
	assert.Assert(t, errdefs.IsNotFound(err))
}

func TestRefcountsAndCaching(t *testing.T) {
	ctx := context.Background()
	g := testutil.NewFakeGetter()
	g.Add("managed", false)
	g.Add("legacy", true)
	s := newStore(t, g, testutil.Adapter)

	for i := 0; i < 3; i++ {
		_, err := s.CreateDriver(ctx, "managed")
		assert.NilError(t, err)
	}
	assert.Equal(t, g.Refs("managed"), 3)
	err := s.ReleaseDriver(ctx, "managed")
	assert.NilError(t, err)
	assert.Equal(t, g.Refs("managed"), 2)
	_, err = s.GetDriver(ctx, "managed")
	assert.NilError(t, err)
	assert.Equal(t, g.Refs("managed"), 2, "lookup does not count")

	// Legacy plugins are resolved once, then cached (and listed for /info); managed ones are looked up
	// each time (that is how their references are counted), their adapters cached (see below).
	_, err = s.GetDriver(ctx, "legacy")
	assert.NilError(t, err)
	_, err = s.GetDriver(ctx, "legacy")
	assert.NilError(t, err)
	assert.Equal(t, g.Gets("legacy"), 1)
	assert.DeepEqual(t, s.GetDriverList(), []string{"legacy"})

	all, err := s.GetAllDrivers(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(all), 2)
}

// A managed plugin's adapter (and so its Capabilities answer) is made once while the getter returns the
// same plugin, and made again when the plugin is replaced (removed and created, upgraded, re-enabled).
func TestManagedAdapterCached(t *testing.T) {
	ctx := context.Background()
	g := testutil.NewFakeGetter()
	g.AddAs("vp", "vp:latest", false)
	adapted := 0
	s := newStore(t, g, func(name string, p getter.CompatPlugin) volume.Driver {
		adapted++
		return testutil.Adapter(name, p)
	})
	for i := 0; i < 3; i++ {
		d, err := s.CreateDriver(ctx, "vp")
		assert.NilError(t, err)
		assert.Equal(t, d.Name(), "vp:latest")
	}
	_, err := s.GetDriver(ctx, "vp")
	assert.NilError(t, err)
	_, err = s.GetAllDrivers(ctx)
	assert.NilError(t, err)
	assert.Equal(t, adapted, 1)
	assert.Equal(t, g.Refs("vp"), 3)

	g.AddAs("vp", "vp:latest", false)
	_, err = s.GetDriver(ctx, "vp")
	assert.NilError(t, err)
	assert.Equal(t, adapted, 2, "a replaced plugin gets a new adapter")
	g.Remove("vp")
	_, err = s.GetDriver(ctx, "vp")
	assert.Assert(t, errdefs.IsNotFound(err), "a removed plugin is not served from the cache: %v", err)
}

func TestInvalidScopeUndoesReference(t *testing.T) {
	ctx := context.Background()
	g := testutil.NewFakeGetter()
	g.Add("weird", false).DriverScope = "galaxy"
	s := newStore(t, g, testutil.Adapter)
	_, err := s.CreateDriver(ctx, "weird")
	assert.ErrorContains(t, err, "invalid scope")
	assert.Equal(t, g.Refs("weird"), 0)
}

func TestSlowLookupDoesNotBlockOthers(t *testing.T) {
	ctx := context.Background()
	g := testutil.NewFakeGetter()
	g.Add("fast", false)
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	g.OnGet = func(ctx context.Context, name string) error {
		if name == "slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	s := newStore(t, g, testutil.Adapter)
	go s.GetDriver(ctx, "slow") //nolint:errcheck
	// Once inside the getter, the first lookup of slow holds slow's lock.
	<-entered
	go s.GetDriver(ctx, "slow") //nolint:errcheck
	done := make(chan error, 1)
	go func() { _, err := s.GetDriver(ctx, "fast"); done <- err }()
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("lookup of fast waited for slow")
	}
	// A second lookup of slow waits on slow's lock, but gives up with its ctx.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := s.GetDriver(cctx, "slow")
	assert.Assert(t, err != nil)
	close(release)
}

type renamedDriver struct {
	volume.Driver
	name string
}

func (r renamedDriver) Name() string { return r.name }

func TestManagedPluginIsNamedCanonically(t *testing.T) {
	ctx := context.Background()
	g := testutil.NewFakeGetter()
	g.AddAs("vp", "vp:latest", false)
	g.AddAs("old", "old.sock", true)
	s := newStore(t, g, func(name string, p getter.CompatPlugin) volume.Driver {
		return renamedDriver{Driver: testutil.Adapter(name, p), name: name}
	})
	d, err := s.GetDriver(ctx, "vp")
	assert.NilError(t, err)
	assert.Equal(t, d.Name(), "vp:latest", "the managed plugin's own name, not the short form asked for")
	d, err = s.GetDriver(ctx, "old")
	assert.NilError(t, err)
	assert.Equal(t, d.Name(), "old", "legacy plugins keep the name they were found by")
}
