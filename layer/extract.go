package layer

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/log"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// ExtractInRoot writes the tar r's entries under the directory root, as docker cp does into a container
// that keeps running: every name is resolved beneath root's handle (openat2 RESOLVE_IN_ROOT, or
// filepath-securejoin's emulation on a kernel without it), so "..", absolute names and symlinks, those in
// the tar and those a racing process puts in place meanwhile, all stay under root. Only an entry's parent
// directory is ever looked up by path; the entry itself is created, changed or removed with *at calls on
// that parent's handle, never following a symlink at its name. A ".wh." name is an ordinary file. The tar
// may be compressed (gzip, bzip2, xz, zstd), as dockerd's PUT /containers/{id}/archive accepts
// (testcontainers-go sends gzip). Tar format errors come back as archive/tar's, for the caller to classify.
func ExtractInRoot(ctx context.Context, root *os.File, r io.Reader) error {
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return err
	}
	defer ds.Close()
	return extractor{root: root, openat2: hasOpenat2()}.run(ctx, ds)
}

func (x extractor) run(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	var dirs []dirTimes
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			// The root itself: its attributes belong to the container, not to the tar.
			continue
		}
		dt, err := x.entry(h, name, tr)
		if err != nil {
			return errors.Wrapf(err, "extract %s", h.Name)
		}
		if dt != nil {
			dirs = append(dirs, *dt)
		}
	}
	// Directory times last: creating their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := x.setDirTimes(dirs[i]); err != nil {
			log.G(ctx).WithError(err).WithField("name", dirs[i].name).Debug("directory times not set")
		}
	}
	return nil
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

type extractor struct {
	root    *os.File
	openat2 bool
}

// hasOpenat2 says whether the kernel has openat2 (Linux 5.6): probing the call itself is the one sure
// test, as seccomp or an old kernel answer ENOSYS.
func hasOpenat2() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// openDir opens the directory p beneath root, symlinks on the way resolved inside root.
func (x extractor) openDir(p string) (*os.File, error) {
	if !x.openat2 {
		return pathrs.OpenatInRoot(x.root, p)
	}
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(int(x.root.Fd()), rel, how)
	for i := 0; i < 64 && (err == unix.EAGAIN || err == unix.EINTR); i++ {
		// A rename elsewhere in the mount raced the lookup: the kernel asks for a retry.
		fd, err = unix.Openat2(int(x.root.Fd()), rel, how)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// parent opens the directory holding name (an absolute, clean path under root), creating the missing
// directories on the way as tar readers do for entries that come before their directory's.
func (x extractor) parent(name string) (*os.File, error) {
	dir := path.Dir(name)
	if dir == "/" {
		return x.openDir("/")
	}
	f, err := x.openDir(dir)
	if err == nil || !(errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR)) {
		return f, err
	}
	return pathrs.MkdirAllHandle(x.root, dir, 0o755)
}

func (x extractor) entry(h *tar.Header, name string, r io.Reader) (*dirTimes, error) {
	dir, err := x.parent(name)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	dfd, base := int(dir.Fd()), path.Base(name)

	var st unix.Stat_t
	exists := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists && !(isDir && h.Typeflag == tar.TypeDir) {
		// Anything but a directory kept for a directory entry is replaced, as dockerd's extractor does.
		if err := removeAt(dfd, base, isDir); err != nil {
			return nil, err
		}
	}
	mode := uint32(h.Mode) & 0o7777
	switch h.Typeflag {
	case tar.TypeDir:
		if !isDir {
			if err := unix.Mkdirat(dfd, base, 0o700); err != nil {
				return nil, &os.PathError{Op: "mkdirat", Path: name, Err: err}
			}
		}
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "openat", Path: name, Err: err}
		}
		defer unix.Close(fd)
		if err := setAttrs(fd, h, mode); err != nil {
			return nil, err
		}
		return &dirTimes{name: name, atime: h.AccessTime, mtime: h.ModTime}, nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, &os.PathError{Op: "openat", Path: name, Err: err}
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return nil, err
		}
		if err := setAttrs(fd, h, mode); err != nil {
			return nil, err
		}
		return nil, utimes(fd, h)
	case tar.TypeSymlink:
		// The target is stored as written: it is resolved, inside the container, by whoever follows it.
		if err := unix.Symlinkat(h.Linkname, dfd, base); err != nil {
			return nil, &os.PathError{Op: "symlinkat", Path: name, Err: err}
		}
		if err := unix.Fchownat(dfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, &os.PathError{Op: "lchown", Path: name, Err: err}
		}
		ts := timespecs(h)
		if err := unix.UtimesNanoAt(dfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, &os.PathError{Op: "utimensat", Path: name, Err: err}
		}
		return nil, nil
	case tar.TypeLink:
		target := path.Clean("/" + h.Linkname)
		if target == "/" {
			return nil, errors.Errorf("invalid hard link target %q", h.Linkname)
		}
		tdir, err := x.openDir(path.Dir(target))
		if err != nil {
			return nil, err
		}
		defer tdir.Close()
		// Flags 0: a symlink at the target's name is linked itself, never followed.
		if err := unix.Linkat(int(tdir.Fd()), path.Base(target), dfd, base, 0); err != nil {
			return nil, &os.PathError{Op: "linkat", Path: name, Err: err}
		}
		return nil, nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		if err := unix.Mknodat(dfd, base, kind|0o600, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
			return nil, &os.PathError{Op: "mknodat", Path: name, Err: err}
		}
		// An O_PATH handle: opening a device or a fifo for real could block or act on it.
		fd, err := unix.Openat(dfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "openat", Path: name, Err: err}
		}
		defer unix.Close(fd)
		var fst unix.Stat_t
		if err := unix.Fstat(fd, &fst); err != nil || fst.Mode&unix.S_IFMT != kind {
			return nil, &os.PathError{Op: "mknodat", Path: name, Err: unix.EEXIST}
		}
		if err := setAttrs(fd, h, mode); err != nil {
			return nil, err
		}
		return nil, utimes(fd, h)
	case tar.TypeXGlobalHeader:
		return nil, nil
	default:
		return nil, errors.Errorf("unsupported tar entry type %q", h.Typeflag)
	}
}

// fdPath names an open handle for the calls that have no fd form for O_PATH handles; the kernel resolves
// it to the handle's file whatever happens to the names around it.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// setAttrs sets owner, mode and xattrs on an open file (O_PATH handles included). The owner goes first:
// chown clears the setuid and setgid bits.
func setAttrs(fd int, h *tar.Header, mode uint32) error {
	if err := unix.Fchownat(fd, "", h.Uid, h.Gid, unix.AT_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "fchown", Path: h.Name, Err: err}
	}
	if err := unix.Chmod(fdPath(fd), mode); err != nil {
		return &os.PathError{Op: "fchmod", Path: h.Name, Err: err}
	}
	for k, v := range h.PAXRecords {
		key, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Setxattr(fdPath(fd), key, []byte(v), 0); err != nil {
			if err == unix.ENOTSUP || err == unix.EPERM {
				// As containerd's extractor: an attribute the filesystem cannot hold is not fatal.
				continue
			}
			return &os.PathError{Op: "fsetxattr", Path: h.Name, Err: err}
		}
	}
	return nil
}

func timespecs(h *tar.Header) [2]unix.Timespec {
	at := h.AccessTime
	if at.IsZero() {
		at = h.ModTime
	}
	return [2]unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
}

func utimes(fd int, h *tar.Header) error {
	ts := timespecs(h)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(fd), ts[:], 0); err != nil {
		return &os.PathError{Op: "utimensat", Path: h.Name, Err: err}
	}
	return nil
}

func (x extractor) setDirTimes(d dirTimes) error {
	f, err := x.openDir(d.name)
	if err != nil {
		return err
	}
	defer f.Close()
	return utimes(int(f.Fd()), &tar.Header{Name: d.name, AccessTime: d.atime, ModTime: d.mtime})
}

// removeAt removes name in the directory dfd, a directory with all its content, each level through a
// handle opened without following symlinks.
func removeAt(dfd int, name string, isDir bool) error {
	if !isDir {
		if err := unix.Unlinkat(dfd, name, 0); err != nil && err != unix.ENOENT {
			return &os.PathError{Op: "unlinkat", Path: name, Err: err}
		}
		return nil
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOTDIR || err == unix.ELOOP {
			// Replaced by a file or a symlink meanwhile: that is removed by name, not followed.
			return removeAt(dfd, name, false)
		}
		return &os.PathError{Op: "openat", Path: name, Err: err}
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			var st unix.Stat_t
			if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			if err := removeAt(fd, n, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
				return err
			}
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}
