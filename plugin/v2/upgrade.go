package v2

import (
	"path/filepath"

	types "github.com/berthd/berthd/api/types/plugin"
)

// Upgrade gives a (disabled) plugin a new manifest and reference, as `docker plugin upgrade` does; its ID,
// name and settings are kept, as dockerd keeps them. dir is <data-root>/plugins/<id>.
func (p *Plugin) Upgrade(cfg types.Config, ref, dir string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.obj.Config = cfg
	p.obj.PluginReference = ref
	p.propagatedMount = ""
	if cfg.PropagatedMount != "" {
		p.propagatedMount = filepath.Join(dir, "propagated-mount")
	}
}
