package containers

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/volume/mounts"
	"github.com/containerd/log"
)

// copyImageContent fills empty volumes with what the image has at their destination (dockerd's
// "populate volume" on create), unless nocopy. The RW layer is mounted only when some volume needs it.
func (s *filesystem) copyImageContent(ctx context.Context, c *Container) error {
	var todo []*mounts.MountPoint
	for _, mp := range c.MountPoints {
		if mp.Type == ctypes.MountTypeVolume && mp.CopyData {
			todo = append(todo, mp)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp(s.cfg.ExecRoot, "rootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := s.layers.MountReadOnly(ctx, c.ID, tmp); err != nil {
		return err
	}
	defer s.layers.Unmount(context.WithoutCancel(ctx), tmp)
	for _, mp := range todo {
		src, ok := dirInRoot(tmp, mp.Destination)
		if !ok || isEmptyDir(src) {
			continue
		}
		p, err := s.volumes.Mount(ctx, mp.Name, c.ID, nil)
		if err != nil {
			return err
		}
		if isEmptyDir(p) {
			if err := copyTree(src, p); err != nil {
				log.G(ctx).WithError(err).WithField("volume", mp.Name).Warn("copy image content into volume")
			}
		}
		if err := s.volumes.Unmount(ctx, mp.Name, c.ID, nil); err != nil {
			log.G(ctx).WithError(err).WithField("volume", mp.Name).Warn("unmount volume after copy")
		}
	}
	return nil
}

// dirInRoot resolves p under root without following symlinks (so an image cannot point the copy at the
// host); a path through a symlink is simply not copied.
func dirInRoot(root, p string) (string, bool) {
	cur := root
	for _, part := range strings.Split(filepath.Clean("/"+p), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil || !fi.IsDir() {
			return "", false
		}
	}
	return cur, true
}

func isEmptyDir(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

func copyTree(src, dst string) error {
	if fi, err := os.Lstat(src); err == nil {
		_ = os.Chmod(dst, fi.Mode().Perm())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			_ = os.Lchown(dst, int(st.Uid), int(st.Gid))
		}
	}
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(target, fi.Mode().Perm()); err != nil && !os.IsExist(err) {
				return err
			}
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
			if err != nil {
				in.Close()
				return err
			}
			_, err = io.Copy(out, in)
			in.Close()
			out.Close()
			if err != nil {
				return err
			}
		default:
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			_ = os.Lchown(target, int(st.Uid), int(st.Gid))
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			_ = os.Chmod(target, fi.Mode())
		}
		return nil
	})
}
