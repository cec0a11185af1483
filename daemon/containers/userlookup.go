package containers

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"

	"github.com/berthd/berthd/daemon/containers/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// maxUserFile bounds what is read of a container's /etc/passwd or /etc/group: the files are the
// container's, and a huge one must not exhaust the daemon.
const maxUserFile = 16 << 20

// resolveUser turns "user[:group]" and --group-add into IDs as dockerd does, names looked up in the
// container's /etc/passwd and /etc/group. A running container's files are read through its init's root
// with every path resolved inside that root (a container cannot point the daemon at host files); a stopped
// container's through a read-only view of its layer. The live layer is never mounted a second time: a
// second read-write mount resets the overlay work directory under the running container, after which
// every copy-up in it fails.
func (s *filesystem) resolveUser(ctx context.Context, c *Container, spec string, groupAdd []string) (oci.User, error) {
	var passwd, group []byte
	err := s.withRoot(ctx, c, func(root *os.File) error {
		var err error
		if passwd, err = readInRoot(root, "/etc/passwd"); err != nil {
			return err
		}
		group, err = readInRoot(root, "/etc/group")
		return err
	})
	if err != nil {
		return oci.User{}, err
	}
	return lookupUser(spec, groupAdd, passwd, group)
}

// lookupUser resolves spec against the contents of passwd and group (nil when the file is missing).
func lookupUser(spec string, groupAdd []string, passwd, group []byte) (oci.User, error) {
	var pr, gr io.Reader
	if passwd != nil {
		pr = bytes.NewReader(passwd)
	}
	if group != nil {
		gr = bytes.NewReader(group)
	}
	eu, err := user.GetExecUser(spec, nil, pr, gr)
	if err != nil {
		return oci.User{}, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	u := oci.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	for _, g := range eu.Sgids {
		if uint32(g) != u.GID {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	// One group at a time: GetAdditionalGroups dedupes through a map, so a list of several would come
	// back in a different order each time; the request's order is kept instead.
	seen := map[uint32]bool{}
	for _, name := range groupAdd {
		if group != nil {
			gr = bytes.NewReader(group)
		}
		add, err := user.GetAdditionalGroups([]string{name}, gr)
		if err != nil {
			return oci.User{}, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		for _, g := range add {
			if !seen[uint32(g)] {
				seen[uint32(g)] = true
				u.AdditionalGids = append(u.AdditionalGids, uint32(g))
			}
		}
	}
	return u, nil
}

// withRoot runs fn with a handle on the container's root directory: the running init's root, else a
// read-only view of the RW layer.
func (s *filesystem) withRoot(ctx context.Context, c *Container, fn func(root *os.File) error) error {
	if st := c.State.snapshot(); st.Running && st.Pid > 0 {
		root, err := os.OpenFile("/proc/"+strconv.Itoa(st.Pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			defer root.Close()
			// The pid was read before the open: make sure it still is this container's init, so a
			// reused pid never leads to another process's files.
			if now := c.State.snapshot(); now.Running && now.Pid == st.Pid {
				return fn(root)
			}
		}
		if !c.State.IsRunning() {
			return s.withReadOnlyLayer(ctx, c, fn)
		}
		return errors.Wrapf(err, "open the root of container %s", c.ID)
	}
	return s.withReadOnlyLayer(ctx, c, fn)
}

func (s *filesystem) withReadOnlyLayer(ctx context.Context, c *Container, fn func(root *os.File) error) error {
	tmp, err := os.MkdirTemp(s.cfg.ExecRoot, "rootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := s.layers.MountReadOnly(ctx, c.ID, tmp); err != nil {
		return err
	}
	// Detached, as the copy roots are: a plain unmount of the view found it busy at every start and
	// retried for 2.5 s (containerd's unmount backs off 50 x 50 ms on EBUSY).
	defer func() {
		if err := unix.Unmount(tmp, unix.MNT_DETACH); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.ID).Warn("unmount the user lookup's view")
		}
	}()
	root, err := os.OpenFile(tmp, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	return fn(root)
}

// readInRoot reads the regular file p with p resolved inside root (symlinks included); a missing file, or
// one that is not a regular file (a FIFO would block the daemon), reads as nil.
func readInRoot(root *os.File, p string) ([]byte, error) {
	h, err := pathrs.OpenatInRoot(root, p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil, nil
		}
		return nil, errors.Wrapf(err, "open %s in the container", p)
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, errors.Wrapf(err, "read %s in the container", p)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUserFile))
	if err != nil {
		return nil, errors.Wrapf(err, "read %s in the container", p)
	}
	return b, nil
}
