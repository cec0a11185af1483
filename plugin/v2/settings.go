package v2

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/pkg/errors"

	types "github.com/berthd/berthd/api/types/plugin"
)

// settable is one parsed `docker plugin set` argument: "name[.field]=value".
type settable struct {
	name, field, value string
}

func parseSettable(arg string) (settable, error) {
	k, v, ok := strings.Cut(arg, "=")
	if !ok || k == "" {
		return settable{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid key value pair: %q", arg))
	}
	name, field, _ := strings.Cut(k, ".")
	return settable{name: name, field: field, value: v}, nil
}

// resolveField picks the field to set: the given one, or the only settable one; it reports whether the
// field is allowed for the kind (allowed) and declared settable by the manifest.
func (s *settable) settableAs(allowed string, declared []string) (bool, error) {
	if s.field == "" {
		switch len(declared) {
		case 0:
			return false, nil
		case 1:
			s.field = declared[0]
		default:
			return false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("multiple settable fields for %q: specify one", s.name))
		}
	}
	if s.field != allowed {
		return false, nil
	}
	for _, d := range declared {
		if d == s.field {
			return true, nil
		}
	}
	return false, nil
}

// ErrActive is returned by Set on an enabled plugin (dockerd answers it with 500).
var ErrActive = errors.New("cannot set on an active plugin, disable plugin before setting")

// Set applies `docker plugin set` arguments ("ENV=v", "args=a b", "mnt.source=/x", "dev.path=/dev/y")
// to the settings, all or none. It refuses while the plugin is enabled.
func (p *Plugin) Set(args []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.obj.Enabled {
		return ErrActive
	}
	next := cloneObj(p.obj).Settings
	if err := ApplySettings(p.obj.Config, &next, args); err != nil {
		return err
	}
	p.obj.Settings = next
	return nil
}

// ApplySettings applies set arguments to s, checked against the manifest cfg. Pure.
func ApplySettings(cfg types.Config, s *types.Settings, args []string) error {
	for _, a := range args {
		st, err := parseSettable(a)
		if err != nil {
			return err
		}
		if err := applyOne(cfg, s, st); err != nil {
			return err
		}
	}
	return nil
}

func notSettable(name string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q is not settable", name))
}

func applyOne(cfg types.Config, s *types.Settings, st settable) error {
	for _, e := range cfg.Env {
		if e.Name != st.name {
			continue
		}
		ok, err := st.settableAs("value", e.Settable)
		if err != nil {
			return err
		}
		if !ok {
			return notSettable(st.name)
		}
		entry := st.name + "=" + st.value
		for i, kv := range s.Env {
			if k, _, _ := strings.Cut(kv, "="); k == st.name {
				s.Env[i] = entry
				return nil
			}
		}
		s.Env = append(s.Env, entry)
		return nil
	}
	if cfg.Args.Name != "" && cfg.Args.Name == st.name {
		ok, err := st.settableAs("value", cfg.Args.Settable)
		if err != nil {
			return err
		}
		if !ok {
			return notSettable(st.name)
		}
		s.Args = strings.Fields(st.value)
		if s.Args == nil {
			s.Args = []string{}
		}
		return nil
	}
	for _, m := range cfg.Mounts {
		if m.Name == "" || m.Name != st.name {
			continue
		}
		ok, err := st.settableAs("source", m.Settable)
		if err != nil {
			return err
		}
		if !ok {
			return notSettable(st.name)
		}
		v := st.value
		for i := range s.Mounts {
			if s.Mounts[i].Name == st.name {
				s.Mounts[i].Source = &v
				return nil
			}
		}
		cm := copyMount(m)
		cm.Source = &v
		s.Mounts = append(s.Mounts, cm)
		return nil
	}
	for _, d := range cfg.Linux.Devices {
		if d.Name == "" || d.Name != st.name {
			continue
		}
		ok, err := st.settableAs("path", d.Settable)
		if err != nil {
			return err
		}
		if !ok {
			return notSettable(st.name)
		}
		v := st.value
		for i := range s.Devices {
			if s.Devices[i].Name == st.name {
				s.Devices[i].Path = &v
				return nil
			}
		}
		cd := copyDevice(d)
		cd.Path = &v
		s.Devices = append(s.Devices, cd)
		return nil
	}
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("setting %q not found in the plugin configuration", st.name))
}
