package containers

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/containerd/errdefs"
)

// Changes kinds of GET /containers/{id}/changes.
const (
	changeModify = 0
	changeAdd    = 1
	changeDelete = 2
)

// initPaths are created by the runtime as mount points, as dockerd's init layer does; they are not the
// container's changes.
var initPaths = map[string]bool{
	"/dev": true, "/proc": true, "/sys": true, "/etc/hosts": true, "/etc/hostname": true,
	"/etc/resolv.conf": true, "/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true, "/.dockerenv": true,
}

// Changes lists what the container changed in its filesystem, from its overlay upper directory.
func (s fsOps) Changes(ctx context.Context, ref string) ([]ctypes.FilesystemChange, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	ms, err := s.layers.Mounts(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var upper string
	var lowers []string
	for _, m := range ms {
		if m.Type != "overlay" {
			continue
		}
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = v
			}
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lowers = strings.Split(v, ":")
			}
		}
	}
	if upper == "" {
		return nil, errdefs.ErrNotImplemented.WithMessage("docker diff needs the overlayfs storage driver")
	}
	skip := map[string]bool{}
	for k := range initPaths {
		skip[k] = true
	}
	for d := range c.MountPoints {
		skip[d] = true
	}
	inLower := func(rel string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
		}
		return false
	}
	var out []ctypes.FilesystemChange
	err = filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == upper {
			return nil
		}
		rel := "/" + strings.TrimPrefix(p, upper+"/")
		if skip[rel] {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		kind := changeAdd
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode()&os.ModeCharDevice != 0 && st.Rdev == 0 {
			kind = changeDelete
		} else if inLower(rel) {
			kind = changeModify
		}
		out = append(out, ctypes.FilesystemChange{Path: rel, Kind: kind})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if out == nil {
		out = []ctypes.FilesystemChange{}
	}
	return out, nil
}
