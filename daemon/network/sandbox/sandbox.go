// Package sandbox creates and removes a container's network namespace as a file: a new namespace
// bind-mounted on <dir>/<key>, which runc joins through the OCI spec's network namespace path and which
// outlives berthd (live-restore finds it again). Stdlib and x/sys only.
package sandbox

import (
	"os"
	"path/filepath"
	"runtime"

	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// Create makes a new network namespace bound on path, with loopback still down (the caller sets it up).
func Create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return errors.Wrap(err, "create netns file")
	}
	f.Close()
	errc := make(chan error, 1)
	// The namespace is made on a thread of its own that never runs Go code again if it cannot return to
	// the original namespace (the thread is then discarded by not unlocking it).
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- errors.Wrap(err, "unshare netns")
			return
		}
		err = unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
		if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr != nil {
			errc <- errors.Wrap(rerr, "return to the daemon's netns")
			return // thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- errors.Wrap(err, "bind netns")
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// Remove unmounts and deletes a namespace file; a missing file is not an error.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return errors.Wrap(err, "unmount netns")
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
