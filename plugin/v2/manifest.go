package v2

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/containerd/errdefs"

	types "github.com/berthd/berthd/api/types/plugin"
)

// InterfaceType is one parsed Interface.Types entry: "<prefix>.<capability>/<version>".
type InterfaceType struct {
	Prefix, Capability, Version string
}

// String is the wire form.
func (t InterfaceType) String() string { return t.Prefix + "." + t.Capability + "/" + t.Version }

// ParseInterfaceType splits "docker.volumedriver/1.0" at the last '.' before the first '/', as dockerd.
func ParseInterfaceType(s string) (InterfaceType, error) {
	bad := errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q is not a plugin interface type", s))
	slash := strings.Index(s, "/")
	if slash < 0 {
		return InterfaceType{}, bad
	}
	head, version := s[:slash], s[slash+1:]
	dot := strings.LastIndex(head, ".")
	if dot <= 0 || dot == len(head)-1 || version == "" {
		return InterfaceType{}, bad
	}
	return InterfaceType{Prefix: head[:dot], Capability: strings.ToLower(head[dot+1:]), Version: version}, nil
}

// ValidateConfig checks a manifest from a create tarball or a registry. Every error is InvalidArgument.
func ValidateConfig(cfg *types.Config) error {
	invalid := func(format string, a ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage("invalid plugin config: " + fmt.Sprintf(format, a...))
	}
	if len(cfg.Interface.Types) == 0 {
		return invalid("Interface.Types is empty")
	}
	for _, t := range cfg.Interface.Types {
		if _, err := ParseInterfaceType(t); err != nil {
			return invalid("%v", err)
		}
	}
	s := cfg.Interface.Socket
	if s == "" {
		return invalid("Interface.Socket is empty")
	}
	if strings.ContainsAny(s, "/\x00") || s == "." || s == ".." || len(s) > 64 {
		return invalid("Interface.Socket %q must be a plain file name", s)
	}
	if ps := cfg.Interface.ProtocolScheme; ps != "" && ps != DefaultProtocolScheme {
		return invalid("unsupported protocol scheme %q", ps)
	}
	if len(cfg.Entrypoint) == 0 {
		return invalid("Entrypoint is empty")
	}
	if cfg.WorkDir != "" && !path.IsAbs(cfg.WorkDir) {
		return invalid("WorkDir %q is not absolute", cfg.WorkDir)
	}
	if pm := cfg.PropagatedMount; pm != "" && (!path.IsAbs(pm) || path.Clean(pm) == "/") {
		return invalid("PropagatedMount %q must be an absolute path below /", pm)
	}
	names := map[string]string{}
	claim := func(kind, name string) error {
		if name == "" {
			return invalid("%s without a Name", kind)
		}
		if strings.ContainsAny(name, "=. \t\n") {
			return invalid("%s name %q must not contain '=', '.' or spaces", kind, name)
		}
		if prev, ok := names[name]; ok {
			return invalid("%s name %q is also used by a %s", kind, name, prev)
		}
		names[name] = kind
		return nil
	}
	for _, e := range cfg.Env {
		if err := claim("env", e.Name); err != nil {
			return err
		}
		if err := checkSettable("env", e.Name, e.Settable, "value"); err != nil {
			return err
		}
	}
	if cfg.Args.Name != "" || len(cfg.Args.Settable) > 0 {
		if err := claim("args", cfg.Args.Name); err != nil {
			return err
		}
		if err := checkSettable("args", cfg.Args.Name, cfg.Args.Settable, "value"); err != nil {
			return err
		}
	}
	for _, m := range cfg.Mounts {
		if m.Name != "" || len(m.Settable) > 0 {
			if err := claim("mount", m.Name); err != nil {
				return err
			}
		}
		if err := checkSettable("mount", m.Name, m.Settable, "source"); err != nil {
			return err
		}
		if !path.IsAbs(m.Destination) {
			return invalid("mount %q: Destination %q is not absolute", m.Name, m.Destination)
		}
	}
	for _, d := range cfg.Linux.Devices {
		if d.Name != "" || len(d.Settable) > 0 {
			if err := claim("device", d.Name); err != nil {
				return err
			}
		}
		if err := checkSettable("device", d.Name, d.Settable, "path"); err != nil {
			return err
		}
	}
	for _, c := range cfg.Linux.Capabilities {
		if !validCapability(c) {
			return invalid("unknown capability %q", c)
		}
	}
	return nil
}

func checkSettable(kind, name string, settable []string, allowed string) error {
	for _, s := range settable {
		if s != allowed {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid plugin config: %s %q: field %q is not settable (only %q)", kind, name, s, allowed))
		}
	}
	return nil
}

func validCapability(c string) bool {
	if !strings.HasPrefix(c, "CAP_") || len(c) < 5 {
		return false
	}
	for _, r := range c[4:] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// Privileges are what a manifest asks for, as `docker plugin install` shows them, sorted by Name.
func Privileges(cfg types.Config) []types.Privilege {
	var out []types.Privilege
	if t := cfg.Network.Type; t != "" && t != "null" && t != "bridge" {
		out = append(out, types.Privilege{Name: "network", Description: "permissions to access a network", Value: []string{t}})
	}
	if cfg.IpcHost {
		out = append(out, types.Privilege{Name: "host ipc namespace", Description: "allow access to host ipc namespace", Value: []string{"true"}})
	}
	if cfg.PidHost {
		out = append(out, types.Privilege{Name: "host pid namespace", Description: "allow access to host pid namespace", Value: []string{"true"}})
	}
	for _, m := range cfg.Mounts {
		if m.Source != nil {
			out = append(out, types.Privilege{Name: "mount", Description: "host path to mount", Value: []string{*m.Source}})
		}
	}
	for _, d := range cfg.Linux.Devices {
		if d.Path != nil {
			out = append(out, types.Privilege{Name: "device", Description: "host device to access", Value: []string{*d.Path}})
		}
	}
	if cfg.Linux.AllowAllDevices {
		out = append(out, types.Privilege{Name: "allow-all-devices", Description: "allow 'rwm' access to all devices", Value: []string{"true"}})
	}
	if len(cfg.Linux.Capabilities) > 0 {
		out = append(out, types.Privilege{Name: "capabilities", Description: "list of additional capabilities required", Value: append([]string(nil), cfg.Linux.Capabilities...)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
