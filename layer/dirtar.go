package layer

import (
	"archive/tar"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// WriteDirTar writes the directory name (in the directory handle parent; "" for parent itself) to w as a
// tar whose entries are named under prefix ("." for no top entry and names relative to the directory), as
// docker cp does out of a container that keeps running: the walk goes through directory handles opened
// with O_NOFOLLOW, every entry is looked at with fstatat/readlinkat/openat(O_NOFOLLOW) on its directory's
// handle, so a process swapping a directory for a symlink meanwhile can make the walk skip or see a
// changed file, never leave the directory. Hard links become link entries to the first name, devices
// and xattrs are kept, sockets left out (a tar cannot hold them). unix.ELOOP or unix.ENOTDIR, with
// nothing written, means name is no longer a directory.
func WriteDirTar(w io.Writer, parent *os.File, name, prefix string) error {
	if name == "" {
		name = "."
	}
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dw := dirTarWriter{tw: tar.NewWriter(w), links: map[[2]uint64]string{}}
	if prefix == "." {
		prefix = ""
	} else {
		prefix = strings.TrimSuffix(prefix, "/") + "/"
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		if err := dw.header(fd, &st, prefix, ""); err != nil {
			unix.Close(fd)
			return err
		}
	}
	if err := dw.walk(fd, prefix); err != nil {
		return err
	}
	return dw.tw.Close()
}

type dirTarWriter struct {
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, ino) of a file with more than one link -> its first name
	buf   []byte
}

// walk writes the entries of the directory fd (closed on return) named under prefix.
func (dw *dirTarWriter) walk(fd int, prefix string) error {
	d := os.NewFile(uintptr(fd), prefix)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // replaced by something else since the fstatat
			}
			if err := unix.Fstat(cfd, &st); err != nil {
				unix.Close(cfd)
				return err
			}
			if err := dw.header(cfd, &st, prefix+n+"/", ""); err != nil {
				unix.Close(cfd)
				return err
			}
			if err := dw.walk(cfd, prefix+n+"/"); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := dw.file(fd, n, prefix+n); err != nil {
				return err
			}
		case unix.S_IFLNK:
			if dw.buf == nil {
				dw.buf = make([]byte, unix.PathMax)
			}
			l, err := unix.Readlinkat(fd, n, dw.buf)
			if err != nil {
				continue
			}
			if err := dw.header(-1, &st, prefix+n, string(dw.buf[:l])); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			// Opened O_PATH only, to read the xattrs: opening a device or a fifo for real acts on it.
			pfd, err := unix.Openat(fd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			err = unix.Fstat(pfd, &st)
			if err == nil {
				err = dw.header(pfd, &st, prefix+n, "")
			}
			unix.Close(pfd)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// file writes the regular file n of the directory dfd, opened without following a symlink at its name.
func (dw *dirTarWriter) file(dfd int, n, name string) error {
	fd, err := unix.Openat(dfd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // replaced by a symlink, a fifo or nothing since the fstatat
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := dw.links[key]; ok {
			h := baseHeader(&st, name)
			h.Typeflag, h.Linkname, h.Mode = tar.TypeLink, first, int64(st.Mode&0o7777)
			return dw.tw.WriteHeader(h)
		}
		dw.links[key] = name
	}
	if err := dw.header(fd, &st, name, ""); err != nil {
		return err
	}
	// The size in the header is what goes in the tar: a file that shrinks meanwhile is padded with
	// zeros, one that grows cut, so that the stream stays a valid tar.
	n64, err := io.CopyN(dw.tw, f, st.Size)
	if err != nil && err != io.EOF {
		return errors.Wrapf(err, "read %s", name)
	}
	if rest := st.Size - n64; rest > 0 {
		_, err = io.CopyN(dw.tw, zeros{}, rest)
		return err
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func baseHeader(st *unix.Stat_t, name string) *tar.Header {
	return &tar.Header{
		Name:    name,
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).UTC(),
		Format:  tar.FormatPAX,
	}
}

// header writes the entry for a file described by st; fd (-1 for none, as for a symlink) is read for
// its xattrs.
func (dw *dirTarWriter) header(fd int, st *unix.Stat_t, name, link string) error {
	h := baseHeader(st, name)
	h.Mode = int64(st.Mode & 0o7777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		h.Typeflag, h.Linkname = tar.TypeSymlink, link
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	}
	if fd >= 0 {
		for k, v := range fdXattrs(fd) {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return dw.tw.WriteHeader(h)
}

// fdXattrs reads the extended attributes of an open file (an O_PATH handle included, through its
// /proc/self/fd name, which the kernel resolves to the handle's file).
func fdXattrs(fd int) map[string]string {
	p := fdPath(fd)
	sz, err := unix.Listxattr(p, nil)
	if err != nil || sz <= 0 {
		return nil
	}
	buf := make([]byte, sz)
	if sz, err = unix.Listxattr(p, buf); err != nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if k == "" {
			continue
		}
		n, err := unix.Getxattr(p, k, nil)
		if err != nil || n < 0 {
			continue
		}
		v := make([]byte, n)
		if n, err = unix.Getxattr(p, k, v); err == nil {
			out[k] = string(v[:n])
		}
	}
	return out
}
