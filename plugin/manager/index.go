package manager

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/berthd/berthd/plugin/getter"
	v2 "github.com/berthd/berthd/plugin/v2"
)

// Index is the manager as plugin/store's Managed index: how other subsystems resolve managed plugins by
// name and capability, and count their references. It is a view of the manager (Manager.Index), kept
// apart from the lifecycle API the plugin router uses.
type Index struct{ m *Manager }

// Index returns the manager's plugin index, for plugin/store.
func (m *Manager) Index() Index { return Index{m} }

// Lookup implements plugin/store's Managed: an enabled plugin with capability.
func (x Index) Lookup(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	p, err := x.m.find(name, capability)
	if err != nil {
		return nil, err
	}
	if !p.IsEnabled() {
		return nil, disabledError(name)
	}
	return p, nil
}

// Acquire implements plugin/store's Managed: Lookup taking a reference. The enabled check and the
// reference are one step (v2.Plugin.Acquire), so a concurrent Disable either sees the reference and
// refuses, or has begun and this fails as for a disabled plugin.
func (x Index) Acquire(ctx context.Context, name, capability string) (getter.CompatPlugin, error) {
	p, err := x.m.find(name, capability)
	if err != nil {
		return nil, err
	}
	if !p.Acquire() {
		return nil, disabledError(name)
	}
	return p, nil
}

// Release implements plugin/store's Managed: gives back a reference taken by Acquire, enabled or not.
func (x Index) Release(ctx context.Context, name, capability string) error {
	p, err := x.m.find(name, capability)
	if err != nil {
		return err
	}
	p.Release()
	return nil
}

func disabledError(name string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s found but disabled", name))
}

// find resolves name to a plugin with capability, enabled or not.
func (m *Manager) find(name, capability string) (*v2.Plugin, error) {
	p, err := m.resolve(name)
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			return nil, notFound(name)
		}
		return nil, err
	}
	if capability != "" && !p.HasCapability(capability) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("plugin %s does not provide %q capability", name, strings.ToLower(capability)))
	}
	return p, nil
}

// GetAllByCap implements plugin/store's Managed: enabled plugins with capability, by name.
func (x Index) GetAllByCap(ctx context.Context, capability string) ([]getter.CompatPlugin, error) {
	var out []getter.CompatPlugin
	for _, p := range x.m.sorted() {
		if p.IsEnabled() && (capability == "" || p.HasCapability(capability)) {
			out = append(out, p)
		}
	}
	return out, nil
}
