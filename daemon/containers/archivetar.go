package containers

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthd/berthd/layer"
	"golang.org/x/sys/unix"
)

// writeTar writes the target t as a tar whose entries are named under name, through containerd's change
// writer (hard links, devices and xattrs kept). Sockets cannot go in a tar and are left out, as dockerd
// does. A directory is named by name even when it was reached through a symlink of another name (dockerd
// rebases the entries the same way); name "." is the root's content without a top entry.
func writeTar(w io.Writer, t *target, name string) error {
	if !t.fi.IsDir() {
		if t.fi.Mode()&os.ModeSocket != 0 {
			return tar.NewWriter(w).Close()
		}
		cw := layer.NewTarWriter(w, fdPath(t.dir))
		err := cw.Add("/"+t.name, t.fi)
		if cerr := cw.Close(); err == nil {
			err = cerr
		}
		return err
	}
	src := t.path()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := rebase(w, pr, name, t.fi)
		if err != nil {
			// Unblock the walk's writes: the client went away or the stream broke.
			pr.CloseWithError(err)
		}
		done <- err
	}()
	cw := layer.NewTarWriter(pw, src)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if p == src {
				return err
			}
			return nil
		}
		if fi.Mode()&os.ModeSocket != 0 || p == src {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return cw.Add("/"+rel, fi)
	})
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	pw.CloseWithError(err)
	if rerr := <-done; err == nil {
		err = rerr
	}
	return err
}

// rebase copies the tar r to w with every name (and hard-link target) put under name, after an entry for
// the directory itself (fi); name "." leaves the names as they are and adds no entry.
func rebase(w io.Writer, r io.Reader, name string, fi os.FileInfo) error {
	tw := tar.NewWriter(w)
	tr := tar.NewReader(r)
	prefix := ""
	if name != "." {
		prefix = name + "/"
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name, h.Uname, h.Gname = prefix, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		h.Name = prefix + h.Name
		if h.Typeflag == tar.TypeLink {
			h.Linkname = prefix + h.Linkname
		}
		delete(h.PAXRecords, "path")
		delete(h.PAXRecords, "linkpath")
		h.Format = tar.FormatUnknown
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeSingleTar writes t as a one-entry tar named name when it is a regular file or a symlink, reading
// it only through its directory's handle and an O_NOFOLLOW open (so a racing rename cannot redirect the
// read); ok is false, with nothing written, for anything else. ELOOP means the file was replaced by a
// symlink since the lookup.
func writeSingleTar(w io.Writer, t *target, name string) (ok bool, err error) {
	if name == "." || t.name == "" {
		return false, nil
	}
	dirfd := int(t.dir.Fd())
	switch {
	case t.fi.Mode()&os.ModeSymlink != 0:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dirfd, t.name, buf)
		if err != nil {
			return false, err
		}
		h, err := tar.FileInfoHeader(t.fi, string(buf[:n]))
		if err != nil {
			return false, err
		}
		h.Name, h.Uname, h.Gname = name, "", ""
		tw := tar.NewWriter(w)
		if err := tw.WriteHeader(h); err != nil {
			return true, err
		}
		return true, tw.Close()
	case t.fi.Mode().IsRegular():
		fd, err := unix.Openat(dirfd, t.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return false, err
		}
		f := os.NewFile(uintptr(fd), t.name)
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return false, err
		}
		if !fi.Mode().IsRegular() {
			return false, unix.ELOOP
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return false, err
		}
		h.Name, h.Uname, h.Gname = name, "", ""
		for k, v := range fileXattrs(fd) {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		tw := tar.NewWriter(w)
		if err := tw.WriteHeader(h); err != nil {
			return true, err
		}
		if _, err := io.CopyN(tw, f, h.Size); err != nil {
			return true, err
		}
		return true, tw.Close()
	}
	return false, nil
}

// fileXattrs reads the extended attributes of an open file, as containerd's archive writer keeps them.
func fileXattrs(fd int) map[string]string {
	sz, err := unix.Flistxattr(fd, nil)
	if err != nil || sz <= 0 {
		return nil
	}
	buf := make([]byte, sz)
	if sz, err = unix.Flistxattr(fd, buf); err != nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if k == "" {
			continue
		}
		n, err := unix.Fgetxattr(fd, k, nil)
		if err != nil || n < 0 {
			continue
		}
		v := make([]byte, n)
		if n, err = unix.Fgetxattr(fd, k, v); err == nil {
			out[k] = string(v[:n])
		}
	}
	return out
}
