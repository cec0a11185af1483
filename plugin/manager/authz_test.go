package manager

import (
	"context"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestDisableAuthzPluginInChain(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	assert.NilError(t, m.Create(ctx, "authzp", pluginTar(t)))
	assert.NilError(t, m.Enable(ctx, "authzp", 0))
	chain := &fakeChain{names: []string{"other", "authzp:latest"}}
	SetAuthzChain(m, chain)

	err := m.Disable(ctx, "authzp", false)
	assert.Check(t, errdefs.IsConflict(err))
	assert.Check(t, is.ErrorContains(err, "plugin authzp:latest is in use as an authorization plugin"))
	p, _ := m.Inspect(ctx, "authzp")
	assert.Check(t, p.Enabled, "a refused disable leaves the plugin enabled")

	// Forced: the administrator means it; the plugin leaves the chain so the API does not lock itself out.
	assert.NilError(t, m.Disable(ctx, "authzp", true))
	assert.Check(t, is.DeepEqual(chain.names, []string{"other"}))

	// Not in the chain: disabled as any plugin.
	assert.NilError(t, m.Enable(ctx, "authzp", 0))
	assert.NilError(t, m.Disable(ctx, "authzp", false))

	// rm -f of an enabled authz plugin also takes it out of the chain, so the API is not locked out.
	assert.NilError(t, m.Enable(ctx, "authzp", 0))
	chain.names = []string{"authzp:latest"}
	assert.Check(t, errdefs.IsConflict(m.Remove(ctx, "authzp", false)))
	assert.NilError(t, m.Remove(ctx, "authzp", true))
	assert.Check(t, is.Len(chain.names, 0))
}

type fakeChain struct{ names []string }

func (c *fakeChain) Has(name string) bool { return is.Contains(c.names, name)().Success() }
func (c *fakeChain) Remove(name string) {
	var out []string
	for _, n := range c.names {
		if n != name {
			out = append(out, n)
		}
	}
	c.names = out
}
