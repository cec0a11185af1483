package containers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berthd/berthd/volume/mounts"
	"github.com/containerd/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// subpathDir holds the pinned sources of a container's volume subpath mounts. It is under the exec root,
// never under the container's own directory: removing a container deletes that directory recursively, and
// a mount left there after a crash would take the volume's files with it.
func (s *specBuilder) subpathDir(c *Container) string {
	return filepath.Join(s.cfg.ExecRoot, "subpaths", c.ID)
}

// volumeSource is what a volume mount binds: the volume's directory, or the subpath inside it (API 1.45
// VolumeOptions.Subpath). A subpath is resolved inside the volume without following links out of it, and
// what was found is pinned by a bind mount of berthd's own: runc would otherwise resolve the path again,
// after the container (which may write to the volume) could have swapped a link in.
func (s *specBuilder) volumeSource(c *Container, mp *mounts.MountPoint, volPath string) (string, error) {
	if mp.Spec == nil || mp.Spec.VolumeOptions == nil || mp.Spec.VolumeOptions.Subpath == "" {
		return volPath, nil
	}
	sub := mp.Spec.VolumeOptions.Subpath
	f, err := pathrs.OpenInRoot(volPath, sub)
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("cannot access path %s in volume %s: %v", sub, mp.Name, err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", errors.Wrapf(err, "stat subpath %s of volume %s", sub, mp.Name)
	}
	dir := s.subpathDir(c)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(mp.Destination))
	target := filepath.Join(dir, hex.EncodeToString(sum[:8]))
	if fi.IsDir() {
		err = os.Mkdir(target, 0o700)
	} else {
		var t *os.File
		if t, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			t.Close()
		}
	}
	if err != nil && !os.IsExist(err) {
		return "", err
	}
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", errors.Wrapf(err, "pin subpath %s of volume %s", sub, mp.Name)
	}
	return target, nil
}

// releaseSubpaths unmounts the pinned subpath sources of c. Only empty mount points are removed, never
// anything recursively.
func (s *specBuilder) releaseSubpaths(c *Container) {
	dir := s.subpathDir(c)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			continue
		}
		_ = os.Remove(p)
	}
	_ = os.Remove(dir)
}
