package containers

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/containerd/containerd/archive"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
)

// withRootfs runs fn on the container's root: a running container's own root (through its init's
// /proc/<pid>/root, so volumes and binds are seen), else its RW layer mounted on a temp dir.
func (s fsOps) withRootfs(ctx context.Context, c *Container, fn func(root string) error) error {
	st := c.State.snapshot()
	if st.Running && st.Pid > 0 {
		return fn(filepath.Join("/proc", strconv.Itoa(st.Pid), "root"))
	}
	tmp, err := os.MkdirTemp(s.cfg.ExecRoot, "rootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := s.layers.Mount(ctx, c.ID, tmp); err != nil {
		return err
	}
	defer s.layers.Unmount(context.WithoutCancel(ctx), tmp)
	return fn(tmp)
}

// resolve maps a container path into root without following any symlink on the way (a client path
// never leads outside the container); the last element is not followed either.
func resolve(root, p string) (string, error) {
	clean := path.Clean("/" + p)
	cur := root
	parts := strings.Split(clean, "/")
	for i, part := range parts {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		if i == len(parts)-1 {
			break
		}
		fi, err := os.Lstat(cur)
		if err != nil || !fi.IsDir() {
			return "", errdefs.ErrNotFound.WithMessage("Could not find the file " + p + " in container")
		}
	}
	return cur, nil
}

func (s fsOps) getForArchive(ref string) (*Container, error) {
	return s.get(ref)
}

// ArchiveStat is HEAD /containers/{id}/archive.
func (s fsOps) ArchiveStat(ctx context.Context, ref, p string) (*ctypes.PathStat, error) {
	c, err := s.getForArchive(ref)
	if err != nil {
		return nil, err
	}
	var st *ctypes.PathStat
	err = s.withRootfs(ctx, c, func(root string) error {
		full, err := resolve(root, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(full)
		if err != nil {
			return errdefs.ErrNotFound.WithMessage("Could not find the file " + p + " in container " + strings.TrimPrefix(c.Name, "/"))
		}
		st = &ctypes.PathStat{Name: fi.Name(), Size: fi.Size(), Mode: uint32(fi.Mode()), Mtime: fi.ModTime().UTC().Format(time.RFC3339Nano)}
		if fi.Mode()&os.ModeSymlink != 0 {
			st.LinkTarget, _ = os.Readlink(full)
		}
		return nil
	})
	return st, err
}

// Archive is GET /containers/{id}/archive: a tar of path, named by its base name.
func (s fsOps) Archive(ctx context.Context, ref, p string, w io.Writer) error {
	c, err := s.getForArchive(ref)
	if err != nil {
		return err
	}
	return s.withRootfs(ctx, c, func(root string) error {
		full, err := resolve(root, p)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(full); err != nil {
			return errdefs.ErrNotFound.WithMessage("Could not find the file " + p + " in container " + strings.TrimPrefix(c.Name, "/"))
		}
		base := filepath.Base(full)
		if path.Clean("/"+p) == "/" {
			base = "."
		}
		return writeTar(w, full, base)
	})
}

// Export is GET /containers/{id}/export: the whole filesystem as a tar.
func (s fsOps) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	return s.withRootfs(ctx, c, func(root string) error {
		// containerd's archive writer against an empty base is a full tar of root that keeps what a
		// hand-written walk loses: hard links, device nodes, xattrs.
		empty, err := os.MkdirTemp("", "export-base")
		if err != nil {
			return err
		}
		defer os.Remove(empty)
		return archive.WriteDiff(ctx, w, empty, root)
	})
}

// writeTar writes src as a tar whose entries are named under name, through containerd's change writer
// (hard links, devices and xattrs kept). Sockets cannot go in a tar and are left out, as dockerd does.
func writeTar(w io.Writer, src, name string) error {
	parent, prefix := filepath.Dir(src), "/"+name
	if name == "." {
		parent, prefix = src, "/"
	}
	cw := archive.NewChangeWriter(w, parent)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if p == src {
				return err
			}
			return nil
		}
		if fi.Mode()&os.ModeSocket != 0 || (name == "." && p == src) {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return cw.HandleChange(fs.ChangeKindAdd, filepath.Join(prefix, rel), fi, nil)
	})
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	return err
}

// ExtractToDir is PUT /containers/{id}/archive: the tar's entries are written under path, which must be
// a directory; entries never land outside it: "..", absolute names and symlinks all resolve inside it.
func (s fsOps) ExtractToDir(ctx context.Context, ref, p string, r io.Reader) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if c.HostConfig.ReadonlyRootfs {
		return errdefs.ErrFailedPrecondition.WithMessage("container rootfs is marked read-only")
	}
	return s.withRootfs(ctx, c, func(root string) error {
		dst, err := resolve(root, p)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(dst); err != nil || !fi.IsDir() {
			return errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
		}
		// Entries resolve inside dst, symlinks included, so nothing lands outside it. A ".wh." name is
		// an ordinary file here: `docker cp` copies files, it does not apply a layer.
		_, err = archive.Apply(ctx, dst, r, archive.WithConvertWhiteout(func(*tar.Header, string) (bool, error) { return true, nil }))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, tar.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, tar.ErrFieldTooLong):
			return errdefs.ErrInvalidArgument.WithMessage("invalid tar: " + err.Error())
		default:
			return errors.Wrap(err, "cannot extract the archive")
		}
	})
}
