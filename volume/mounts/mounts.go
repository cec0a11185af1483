// Package mounts parses and validates a container's mount requests, `-v` specs (HostConfig.Binds),
// anonymous volumes (Config.Volumes) and `--mount` (HostConfig.Mounts), into MountPoints, with dockerd's
// rules and messages. It is pure: no file system access and no volume service calls; whoever holds a
// MountPoint checks bind sources and creates volumes. It imports api/types/container and errdefs only.
package mounts

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/berthd/berthd/api/types/container"
	"github.com/containerd/errdefs"
)

// MountPoint is one parsed mount of a container, kept in the container record.
type MountPoint struct {
	Type        string `json:"Type"` // bind, volume or tmpfs
	Source      string `json:"Source,omitempty"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
	// Name is the volume name ("" until an anonymous volume is created); Driver its driver ("" = probe).
	Name   string `json:"Name,omitempty"`
	Driver string `json:"Driver,omitempty"`
	// Mode is the raw mode of a -v spec ("ro", "z", ...), shown by inspect.
	Mode        string `json:"Mode"`
	Propagation string `json:"Propagation,omitempty"`
	// CopyData copies the image's content at Destination into an empty volume on first use.
	CopyData bool `json:"CopyData,omitempty"`
	// Anonymous marks a volume created for this container (removed with it by rm -v / --rm).
	Anonymous bool `json:"Anonymous,omitempty"`
	// Spec is the original --mount, when the mount came from one.
	Spec *container.Mount `json:"Spec,omitempty"`
	// ID is the mount ID handed to the volume driver's Mount/Unmount while the container runs.
	ID string `json:"ID,omitempty"`
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

var propagationModes = map[string]bool{"shared": true, "rshared": true, "slave": true, "rslave": true, "private": true, "rprivate": true}

func invalid(format string, a ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
}

func invalidSpec(spec string) error { return invalid("invalid volume specification: '%s'", spec) }

// ValidName reports whether name is acceptable as a local volume name.
func ValidName(name string) bool { return validName.MatchString(name) }

func checkDestination(spec, typ, dst string) error {
	if dst == "" {
		return invalid("invalid mount config for type %q: field Target must not be empty", typ)
	}
	if !path.IsAbs(dst) {
		if spec != "" {
			return invalid("invalid volume specification: '%s': invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", spec, typ, dst)
		}
		return invalid("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", typ, dst)
	}
	if path.Clean(dst) == "/" {
		return invalid("invalid specification: destination can't be '/'")
	}
	return nil
}

// parseMode splits a -v mode ("ro,z,rshared,nocopy") into its parts.
func parseMode(spec, mode string) (rw bool, propagation string, copyData bool, err error) {
	rw, copyData = true, true
	if mode == "" {
		return
	}
	seenRW := false
	for _, m := range strings.Split(mode, ",") {
		switch {
		case m == "rw" || m == "ro":
			if seenRW {
				return false, "", false, invalid("invalid mode: %s", mode)
			}
			seenRW, rw = true, m == "rw"
		case m == "z" || m == "Z":
		case m == "nocopy":
			copyData = false
		case m == "consistent" || m == "cached" || m == "delegated":
		case propagationModes[m]:
			if propagation != "" {
				return false, "", false, invalid("invalid mode: %s", mode)
			}
			propagation = m
		default:
			return false, "", false, invalid("invalid mode: %s", mode)
		}
	}
	return
}

// ParseBind parses one HostConfig.Binds entry ("src:dst[:mode]", or "dst" for an anonymous volume).
// volumeDriver is HostConfig.VolumeDriver, applied to named and anonymous volumes.
func ParseBind(spec, volumeDriver string) (*MountPoint, error) {
	parts := strings.Split(spec, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return nil, invalidSpec(spec)
	}
	if len(parts) > 1 && src == "" || dst == "" {
		return nil, invalidSpec(spec)
	}
	rw, prop, copyData, err := parseMode(spec, mode)
	if err != nil {
		return nil, err
	}
	mp := &MountPoint{Destination: path.Clean(dst), RW: rw, Mode: mode, CopyData: copyData}
	switch {
	case src == "":
		mp.Type, mp.Driver, mp.Anonymous = container.MountTypeVolume, volumeDriver, true
	case path.IsAbs(src):
		mp.Type, mp.Source = container.MountTypeBind, path.Clean(src)
		mp.Propagation = prop
		if mp.Propagation == "" {
			mp.Propagation = "rprivate"
		}
		mp.CopyData = false
	default:
		if !validName.MatchString(src) {
			return nil, invalid("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", src)
		}
		if prop != "" {
			return nil, invalid("invalid mode: %s", mode)
		}
		mp.Type, mp.Name, mp.Driver = container.MountTypeVolume, src, volumeDriver
	}
	if err := checkDestination(spec, mp.Type, dst); err != nil {
		return nil, err
	}
	return mp, nil
}

// ParseVolume is one Config.Volumes entry (an image's or `-v /dst` VOLUME): an anonymous volume.
func ParseVolume(dst, volumeDriver string) (*MountPoint, error) {
	if err := checkDestination("", container.MountTypeVolume, dst); err != nil {
		return nil, err
	}
	return &MountPoint{Type: container.MountTypeVolume, Destination: path.Clean(dst), RW: true, Driver: volumeDriver, Anonymous: true, CopyData: true}, nil
}

// ParseMount validates one --mount. The existence of a bind source is the caller's check.
func ParseMount(m container.Mount) (*MountPoint, error) {
	typ := m.Type
	errf := func(format string, a ...any) error {
		return invalid("invalid mount config for type %q: %s", typ, fmt.Sprintf(format, a...))
	}
	if err := checkDestination("", typ, m.Target); err != nil {
		return nil, err
	}
	mc := m
	mp := &MountPoint{Type: typ, Destination: path.Clean(m.Target), RW: !m.ReadOnly, Spec: &mc}
	switch typ {
	case container.MountTypeBind:
		if m.VolumeOptions != nil {
			return nil, errf("field VolumeOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return nil, errf("field TmpfsOptions must not be specified")
		}
		if m.Source == "" {
			return nil, errf("field Source must not be empty")
		}
		if !path.IsAbs(m.Source) {
			return nil, errf("invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		mp.Source = path.Clean(m.Source)
		mp.Propagation = "rprivate"
		if m.BindOptions != nil && m.BindOptions.Propagation != "" {
			if !propagationModes[m.BindOptions.Propagation] {
				return nil, errf("invalid propagation mode: %s", m.BindOptions.Propagation)
			}
			mp.Propagation = m.BindOptions.Propagation
		}
	case container.MountTypeVolume:
		if m.BindOptions != nil {
			return nil, errf("field BindOptions must not be specified")
		}
		if m.TmpfsOptions != nil {
			return nil, errf("field TmpfsOptions must not be specified")
		}
		if m.Source != "" && !validName.MatchString(m.Source) {
			return nil, errf("invalid volume name %q", m.Source)
		}
		mp.Name = m.Source
		mp.Anonymous = m.Source == ""
		mp.CopyData = true
		if vo := m.VolumeOptions; vo != nil {
			mp.CopyData = !vo.NoCopy
			if vo.DriverConfig != nil {
				mp.Driver = vo.DriverConfig.Name
			}
			if sp := vo.Subpath; sp != "" && (path.IsAbs(sp) || path.Clean(sp) == ".." || strings.HasPrefix(path.Clean(sp), "../")) {
				return nil, errf("subpath must be a relative path within the volume")
			}
		}
	case container.MountTypeTmpfs:
		if m.BindOptions != nil {
			return nil, errf("field BindOptions must not be specified")
		}
		if m.VolumeOptions != nil {
			return nil, errf("field VolumeOptions must not be specified")
		}
		if m.Source != "" {
			return nil, errf("field Source must not be specified")
		}
		if m.TmpfsOptions != nil && m.TmpfsOptions.SizeBytes < 0 {
			return nil, errf("invalid tmpfs size %d", m.TmpfsOptions.SizeBytes)
		}
	case "":
		return nil, invalid("invalid mount config: mount type unspecified")
	default:
		return nil, invalid("invalid mount config: mount type unknown: %q", typ)
	}
	return mp, nil
}

// TmpfsOptions renders a tmpfs mount's options.
func (mp *MountPoint) TmpfsOptions() []string {
	opts := []string{"nosuid", "nodev", "noexec"}
	if !mp.RW {
		opts = append(opts, "ro")
	}
	if mp.Spec != nil && mp.Spec.TmpfsOptions != nil {
		if s := mp.Spec.TmpfsOptions.SizeBytes; s > 0 {
			opts = append(opts, fmt.Sprintf("size=%dk", (s+1023)/1024))
		}
		if md := mp.Spec.TmpfsOptions.Mode; md != 0 {
			opts = append(opts, fmt.Sprintf("mode=%o", md))
		}
	}
	return opts
}

// BindOptions renders the options of a bind (or volume directory) mount.
func (mp *MountPoint) BindOptions() []string {
	opts := []string{"rbind"}
	if mp.Spec != nil && mp.Spec.BindOptions != nil && mp.Spec.BindOptions.NonRecursive {
		opts = []string{"bind"}
	}
	if mp.RW {
		opts = append(opts, "rw")
	} else {
		opts = append(opts, "ro")
	}
	prop := mp.Propagation
	if prop == "" {
		prop = "rprivate"
	}
	return append(opts, prop)
}

// ModeString is what inspect shows as Mode.
func (mp *MountPoint) ModeString() string {
	if mp.Spec != nil {
		return ""
	}
	if mp.Mode == "" && mp.Type == container.MountTypeVolume {
		return "z"
	}
	return mp.Mode
}

// ParseVolumesFrom parses a --volumes-from entry "container[:ro|rw]".
func ParseVolumesFrom(spec string) (id, mode string, err error) {
	if spec == "" {
		return "", "", invalid("volumes-from specification cannot be an empty string")
	}
	id, mode, _ = strings.Cut(spec, ":")
	switch mode {
	case "", "rw", "ro":
	default:
		return "", "", invalid("invalid mode for volumes-from: %s", mode)
	}
	return id, mode, nil
}
