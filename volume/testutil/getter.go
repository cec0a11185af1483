package testutil

import (
	"context"
	"sort"
	"sync"

	"github.com/berthd/berthd/plugin/getter"
	"github.com/berthd/berthd/volume"
	"github.com/containerd/errdefs"
)

// FakePlugin is a plugin as the getter returns it; Driver is what the test adapter wraps it as.
type FakePlugin struct {
	PluginName string
	Legacy     bool
	Driver     *FakeDriver
}

func (p *FakePlugin) Name() string                  { return p.PluginName }
func (p *FakePlugin) ScopedPath(path string) string { return path }
func (p *FakePlugin) IsV1() bool                    { return p.Legacy }
func (p *FakePlugin) Client() getter.Client         { return nil }

// Adapter is a drivers.PluginAdapter for FakePlugins: it returns the plugin's FakeDriver.
func Adapter(name string, p getter.CompatPlugin) volume.Driver {
	return p.(*FakePlugin).Driver
}

// FakeGetter is an in-memory getter.PluginGetter that counts references like the managed plugin store.
type FakeGetter struct {
	// OnGet runs before each Lookup, Acquire or Release (e.g. to make one name slow).
	OnGet func(ctx context.Context, name string) error

	mu      sync.Mutex
	plugins map[string]*FakePlugin
	refs    map[string]int
	gets    map[string]int
}

// NewFakeGetter returns a getter with no plugins.
func NewFakeGetter() *FakeGetter {
	return &FakeGetter{plugins: map[string]*FakePlugin{}, refs: map[string]int{}, gets: map[string]int{}}
}

// Add makes a plugin with a fresh FakeDriver available and returns the driver.
func (g *FakeGetter) Add(name string, legacy bool) *FakeDriver {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := NewFakeDriver(name)
	g.plugins[name] = &FakePlugin{PluginName: name, Legacy: legacy, Driver: d}
	return d
}

// AddAs makes a plugin found under lookup whose own name is canonical (a managed plugin asked for as
// "vp" that calls itself "vp:latest").
func (g *FakeGetter) AddAs(lookup, canonical string, legacy bool) *FakeDriver {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := NewFakeDriver(canonical)
	g.plugins[lookup] = &FakePlugin{PluginName: canonical, Legacy: legacy, Driver: d}
	return d
}

// Remove makes the plugin disappear.
func (g *FakeGetter) Remove(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.plugins, name)
}

// Refs is the plugin's reference count.
func (g *FakeGetter) Refs(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refs[name]
}

// Gets is how often name was looked up, acquired or released.
func (g *FakeGetter) Gets(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gets[name]
}

// Lookup, Acquire and Release implement getter.PluginGetter; Gets counts all three.
func (g *FakeGetter) Lookup(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	return g.get(ctx, name, 0)
}

func (g *FakeGetter) Acquire(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	return g.get(ctx, name, 1)
}

func (g *FakeGetter) Release(ctx context.Context, name, capability string) error {
	_, err := g.get(ctx, name, -1)
	return err
}

func (g *FakeGetter) get(ctx context.Context, name string, delta int) (getter.CompatPlugin, error) {
	g.mu.Lock()
	g.gets[name]++
	g.mu.Unlock()
	if g.OnGet != nil {
		if err := g.OnGet(ctx, name); err != nil {
			return nil, err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.plugins[name]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage(`plugin "` + name + `" not found`)
	}
	if !p.Legacy {
		g.refs[name] = max(0, g.refs[name]+delta)
	}
	return p, nil
}

func (g *FakeGetter) GetAllByCap(ctx context.Context, capability string) ([]getter.CompatPlugin, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []getter.CompatPlugin
	for _, p := range g.plugins {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}
