package manager

import (
	"context"
	"fmt"

	v2 "github.com/berthd/berthd/plugin/v2"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// AuthzChain is the API's list of authorization plugins, as far as the manager needs it: a plugin in it
// guards every request, so taking it away must be deliberate.
type AuthzChain interface {
	Has(name string) bool
	Remove(name string)
}

// SetAuthzChain tells m about the API's authorization plugins (set once, after start-up). A function, not
// a method: Manager's method set is its lifecycle API and already at the size limit.
func SetAuthzChain(m *Manager, c AuthzChain) { m.authz.Store(&c) }

// checkAuthzDisable refuses to disable a plugin the API consults for authorization: disabling it would
// deny every request (the API fails closed), the one to enable it again included. With force the
// administrator's intent is plain: the plugin leaves the chain (dockerd's behaviour for any disable).
func checkAuthzDisable(ctx context.Context, m *Manager, p *v2.Plugin, force bool) error {
	c := m.authz.Load()
	if c == nil || !(*c).Has(p.Name()) {
		return nil
	}
	if !force {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s is in use as an authorization plugin: remove it from authorization-plugins and reload the daemon first, or use --force", p.Name()))
	}
	(*c).Remove(p.Name())
	log.G(ctx).WithField("plugin", p.Name()).Warn("authorization plugin force-disabled: removed from the authorization chain")
	return nil
}
