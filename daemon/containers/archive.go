package containers

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/layer"
	"github.com/berthd/berthd/volume/mounts"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// Copies in and out of a container (docker cp, export) never act on a path a process in the container
// can change underneath them: a running container is frozen for the copy, as dockerd does, and every
// client path is resolved inside the container's root through file handles (symlinks included, an
// absolute link or ".." never leaves the root), so a racing swap of a directory for a symlink to / cannot
// steer the daemon to host files (the CVE-2018-15664 class).

// freeze pauses a running container for a copy; release undoes it. Copies share one freeze; a container
// the user paused stays paused, and one the user pauses during the copy is left paused.
func (s *filesystem) freeze(ctx context.Context, c *Container) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.task == nil || !c.State.IsRunning() || c.State.IsPaused() {
		return func() {}, nil
	}
	if c.freezes == 0 {
		if err := c.task.Pause(ctx); err != nil {
			return nil, errors.Wrapf(err, "freeze container %s for the copy", c.ID)
		}
	}
	c.freezes++
	task := c.task
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.freezes--
		if c.freezes > 0 || c.State.IsPaused() || c.task != task {
			return
		}
		if err := task.Resume(context.WithoutCancel(ctx)); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.ID).Warn("thaw container after a copy")
		}
	}, nil
}

// copyMode says what a copy does with the container's files.
type copyMode int

const (
	// copyStat only looks at one name through a handle on its directory (lstat, readlink: neither
	// follows the name), which no racing process can redirect: the container need not be frozen.
	copyStat copyMode = iota
	copyRead
	copyWrite
)

// withCopyRoot runs fn with a handle on the container's root as its processes see it, volumes and binds
// included: a running container's own root, the container frozen meanwhile; for a stopped one, its layer
// (read-write only when write) with its volumes and binds mounted on it, the container locked meanwhile
// (as dockerd) so that a start cannot mount the layer at the same time.
func (s *filesystem) withCopyRoot(ctx context.Context, c *Container, mode copyMode, fn func(root *os.File) error) error {
	write := mode == copyWrite
	if st := c.State.snapshot(); st.Running && st.Pid > 0 {
		if mode != copyStat {
			release, err := s.freeze(ctx, c)
			if err != nil {
				return err
			}
			defer release()
		}
		root, err := os.OpenFile("/proc/"+strconv.Itoa(st.Pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			defer root.Close()
			if now := c.State.snapshot(); now.Running && now.Pid == st.Pid {
				return fn(root)
			}
		}
		if c.State.IsRunning() {
			return errors.Wrapf(err, "open the root of container %s", c.ID)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.IsRunning() {
		return errdefs.ErrConflict.WithMessage("container " + c.ID + " started during the copy; try again")
	}
	tmp, err := os.MkdirTemp(s.cfg.ExecRoot, "rootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if write {
		err = s.layers.Mount(ctx, c.ID, tmp)
	} else {
		err = s.layers.MountReadOnly(ctx, c.ID, tmp)
	}
	if err != nil {
		return err
	}
	// Detaching the top mount takes the volumes mounted below it along.
	defer func() {
		if err := unix.Unmount(tmp, unix.MNT_DETACH); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.ID).Warn("unmount the copy's root")
		}
	}()
	root, err := os.OpenFile(tmp, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	unmount, err := s.mountForCopy(ctx, c, root, write)
	if err != nil {
		return err
	}
	defer unmount()
	return fn(root)
}

// mountForCopy mounts a stopped container's volumes and binds on root (its layer), parents first, each
// mount point resolved inside root. A mount point the layer lacks is created when write, else left out
// (a read-only view cannot have it). unmount releases the volumes (the mounts go with root's).
func (s *filesystem) mountForCopy(ctx context.Context, c *Container, root *os.File, write bool) (unmount func(), err error) {
	mountID := "cp-" + c.ID
	var mounted []string
	unmount = func() {
		for _, name := range mounted {
			if err := s.volumes.Unmount(context.WithoutCancel(ctx), name, mountID, nil); err != nil {
				log.G(ctx).WithError(err).WithField("volume", name).Warn("unmount volume after a copy")
			}
		}
	}
	defer func() {
		if err != nil {
			unmount()
		}
	}()
	mps := make([]*mounts.MountPoint, 0, len(c.MountPoints))
	for _, mp := range c.MountPoints {
		if mp.Type == ctypes.MountTypeVolume || mp.Type == ctypes.MountTypeBind {
			mps = append(mps, mp)
		}
	}
	depth := func(p string) int { return strings.Count(path.Clean(p), "/") }
	sort.Slice(mps, func(i, j int) bool { return depth(mps[i].Destination) < depth(mps[j].Destination) })
	for _, mp := range mps {
		src := mp.Source
		if mp.Type == ctypes.MountTypeVolume {
			if src, err = s.volumes.Mount(ctx, mp.Name, mountID, nil); err != nil {
				return unmount, err
			}
			mounted = append(mounted, mp.Name)
		}
		fi, err := os.Stat(src)
		if err != nil {
			continue
		}
		var dst *os.File
		if fi.IsDir() && write {
			dst, err = pathrs.MkdirAllHandle(root, mp.Destination, 0o755)
		} else {
			dst, err = pathrs.OpenatInRoot(root, mp.Destination)
		}
		if err != nil {
			continue
		}
		err = unix.Mount(src, fdPath(dst), "", unix.MS_BIND|unix.MS_REC, "")
		dst.Close()
		if err != nil {
			// A file onto a directory or the reverse: the start would fail the same way.
			log.G(ctx).WithError(err).WithField("destination", mp.Destination).Debug("mount point left out of the copy")
		}
	}
	return unmount, nil
}

// fdPath names an open handle as a path the daemon can walk from (the kernel resolves it to the handle's
// file, whatever happens to the names above it).
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// target is a client path resolved inside a container root: the directory holding it and its name there
// (name "" when the path is the root itself).
type target struct {
	dir  *os.File
	name string
	fi   os.FileInfo
}

func (t *target) Close() { t.dir.Close() }

// path is the target as a path through its directory's handle.
func (t *target) path() string {
	if t.name == "" {
		return fdPath(t.dir) + "/."
	}
	return fdPath(t.dir) + "/" + t.name
}

// resolveTarget resolves p inside root as dockerd resolves a copy's path: symlinks in every component
// but the last are followed inside the root; the last is followed too when p ends in "/" or "/.", which
// then must name a directory. A missing path is NotFound "Could not find the file … in container …".
func resolveTarget(root *os.File, p, containerName string) (*target, error) {
	notFound := errdefs.ErrNotFound.WithMessage("Could not find the file " + p + " in container " + containerName)
	clean := path.Clean("/" + p)
	follow := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	dirPath, name := path.Dir(clean), path.Base(clean)
	if clean == "/" || follow {
		dirPath, name = clean, ""
	}
	dir, err := pathrs.OpenatInRoot(root, dirPath)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, notFound
		case errors.Is(err, unix.ENOTDIR):
			return nil, errdefs.ErrInvalidArgument.WithMessage("lstat " + p + ": not a directory")
		case errors.Is(err, unix.ELOOP):
			return nil, errdefs.ErrInvalidArgument.WithMessage("lstat " + p + ": too many levels of symbolic links")
		}
		return nil, errors.Wrapf(err, "resolve %s in container %s", p, containerName)
	}
	t := &target{dir: dir, name: name}
	if t.fi, err = os.Lstat(t.path()); err != nil {
		dir.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, notFound
		}
		if errors.Is(err, unix.ENOTDIR) {
			return nil, errdefs.ErrInvalidArgument.WithMessage("lstat " + p + ": not a directory")
		}
		return nil, errors.Wrapf(err, "lstat %s in container %s", p, containerName)
	}
	if name == "" && !t.fi.IsDir() {
		dir.Close()
		return nil, errdefs.ErrInvalidArgument.WithMessage("lstat " + p + ": not a directory")
	}
	return t, nil
}

// ArchiveStat is HEAD /containers/{id}/archive.
func (s *filesystem) ArchiveStat(ctx context.Context, ref, p string) (*ctypes.PathStat, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	var st *ctypes.PathStat
	err = s.withCopyRoot(ctx, c, copyStat, func(root *os.File) error {
		t, err := resolveTarget(root, p, strings.TrimPrefix(c.Name, "/"))
		if err != nil {
			return err
		}
		defer t.Close()
		st = &ctypes.PathStat{Name: path.Base(path.Clean("/" + p)), Size: t.fi.Size(), Mode: uint32(t.fi.Mode()), Mtime: t.fi.ModTime().UTC().Format(time.RFC3339Nano)}
		if t.fi.Mode()&os.ModeSymlink != 0 {
			st.LinkTarget, _ = os.Readlink(t.path())
		}
		return nil
	})
	return st, err
}

// Archive is GET /containers/{id}/archive: a tar of path, named by its base name.
func (s *filesystem) Archive(ctx context.Context, ref, p string, w io.Writer) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	base := path.Base(path.Clean("/" + p))
	if base == "/" {
		base = "."
	}
	// A single file or symlink is read through handles alone (no name is followed after the lookup), so
	// the container need not be frozen; anything else is walked by name, frozen.
	single := false
	err = s.withCopyRoot(ctx, c, copyStat, func(root *os.File) error {
		t, err := resolveTarget(root, p, strings.TrimPrefix(c.Name, "/"))
		if err != nil {
			return err
		}
		defer t.Close()
		if single, err = writeSingleTar(w, t, base); errors.Is(err, unix.ELOOP) {
			// The file became a symlink since the lookup: take the frozen path.
			single, err = false, nil
		}
		return err
	})
	if err != nil || single {
		return err
	}
	return s.withCopyRoot(ctx, c, copyRead, func(root *os.File) error {
		t, err := resolveTarget(root, p, strings.TrimPrefix(c.Name, "/"))
		if err != nil {
			return err
		}
		defer t.Close()
		return writeTar(w, t, base)
	})
}

// Export is GET /containers/{id}/export: the container's filesystem (its layers, not its volumes nor the
// kernel's pseudo-filesystems) as a tar, from a read-only view of the layer; a running container is
// frozen meanwhile so that nothing changes under the walk.
func (s *filesystem) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	release, err := s.freeze(ctx, c)
	if err != nil {
		return err
	}
	defer release()
	tmp, err := os.MkdirTemp(s.cfg.ExecRoot, "rootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := s.layers.MountReadOnly(ctx, c.ID, tmp); err != nil {
		return err
	}
	defer s.layers.Unmount(context.WithoutCancel(ctx), tmp)
	// containerd's archive writer against an empty base is a full tar of root that keeps what a
	// hand-written walk loses: hard links, device nodes, xattrs.
	empty, err := os.MkdirTemp(s.cfg.ExecRoot, "export-base")
	if err != nil {
		return err
	}
	defer os.Remove(empty)
	return layer.WriteDirDiff(ctx, w, empty, tmp)
}

// ExtractToDir is PUT /containers/{id}/archive: the tar's entries are written under path, which must be
// a directory (symlinks on the way followed inside the container); entries never land outside it: "..",
// absolute names and symlinks all resolve inside it.
func (s *filesystem) ExtractToDir(ctx context.Context, ref, p string, r io.Reader) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if c.HostConfig.ReadonlyRootfs {
		return errdefs.ErrFailedPrecondition.WithMessage("container rootfs is marked read-only")
	}
	return s.withCopyRoot(ctx, c, copyWrite, func(root *os.File) error {
		dst, err := pathrs.OpenatInRoot(root, path.Clean("/"+p))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return errdefs.ErrNotFound.WithMessage("Could not find the file " + p + " in container " + strings.TrimPrefix(c.Name, "/"))
			}
			return errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
		}
		defer dst.Close()
		if fi, err := dst.Stat(); err != nil || !fi.IsDir() {
			return errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
		}
		// A ".wh." name is an ordinary file here: `docker cp` copies files, it does not apply a layer.
		err = layer.ExtractFiles(ctx, fdPath(dst), r)
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
