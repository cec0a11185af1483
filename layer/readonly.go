package layer

import (
	"context"
	"strings"

	"github.com/containerd/containerd/mount"
	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
)

// MountReadOnly mounts a read-only view of the RW layer key on target. Unlike Mount it is safe while the
// layer is in use by a running container: an overlay view takes the layer's upper directory as one more
// lower directory and has no upper or work directory of its own, so it never touches the live mount's work
// directory (a second read-write mount of the same upper and work directories resets the work directory and
// breaks every later copy-up in the container).
func (s *Store) MountReadOnly(ctx context.Context, key, target string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ms, err := s.sn().Mounts(s.ctx(ctx), key)
	if err != nil {
		return errors.Wrapf(err, "mounts of layer %s", key)
	}
	ro := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		v, err := readOnly(m)
		if err != nil {
			return errors.Wrapf(err, "read-only view of layer %s", key)
		}
		ro = append(ro, v)
	}
	return mount.All(ro, target)
}

// readOnly turns one snapshot mount into its read-only equivalent.
func readOnly(m mount.Mount) (mount.Mount, error) {
	out := mount.Mount{Type: m.Type, Source: m.Source}
	switch m.Type {
	case "overlay":
		var upper, lower string
		var rest []string
		for _, o := range m.Options {
			switch {
			case strings.HasPrefix(o, "upperdir="):
				upper = strings.TrimPrefix(o, "upperdir=")
			case strings.HasPrefix(o, "lowerdir="):
				lower = strings.TrimPrefix(o, "lowerdir=")
			case strings.HasPrefix(o, "workdir="), o == "rw", o == "volatile":
			default:
				rest = append(rest, o)
			}
		}
		dirs := []string{}
		if upper != "" {
			dirs = append(dirs, upper)
		}
		if lower != "" {
			dirs = append(dirs, lower)
		}
		if len(dirs) == 0 {
			return out, errdefs.ErrInvalidArgument.WithMessage("overlay mount without directories")
		}
		if len(dirs) == 1 {
			// overlayfs needs two lower directories without an upper one; a bind is the same view.
			return mount.Mount{Type: "bind", Source: dirs[0], Options: []string{"rbind", "ro"}}, nil
		}
		out.Options = append(rest, "lowerdir="+strings.Join(dirs, ":"))
		return out, nil
	case "bind", "rbind":
		for _, o := range m.Options {
			if o != "rw" && o != "ro" {
				out.Options = append(out.Options, o)
			}
		}
		out.Options = append(out.Options, "ro")
		return out, nil
	default:
		// Snapshotters without a work directory (btrfs, zfs subvolumes): the same mount, read-only.
		for _, o := range m.Options {
			if o != "rw" && o != "ro" {
				out.Options = append(out.Options, o)
			}
		}
		out.Options = append(out.Options, "ro")
		return out, nil
	}
}
