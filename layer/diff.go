package layer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
)

// A RW layer's changes are read from its overlay upper directory, as containerd's overlay differ does: the
// walk covers what changed, not the whole image, and a read-only view of the parent chain is only consulted
// to tell an addition from a modification. Whiteouts and opaque directories are converted by continuity.

// Changes calls fn for every change of RW layer key against the image chain it was prepared on.
func (s *Store) Changes(ctx context.Context, key string, fn fs.ChangeFunc) error {
	return s.walkChanges(ctx, key, func(string) fs.ChangeFunc { return fn })
}

// WriteDiff writes the changes of RW layer key to w as an image layer tar (deletions as whiteouts), keeping
// hard links, devices and xattrs. Paths for which skip is true are left out (the caller decides about
// their children too).
func (s *Store) WriteDiff(ctx context.Context, key string, w io.Writer, skip func(path string) bool) error {
	var cw *archive.ChangeWriter
	err := s.walkChanges(ctx, key, func(upper string) fs.ChangeFunc {
		cw = archive.NewChangeWriter(w, upper)
		return func(k fs.ChangeKind, p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if skip != nil && skip(p) {
				return nil
			}
			return cw.HandleChange(k, p, fi, nil)
		}
	})
	if cw != nil {
		if cerr := cw.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (s *Store) walkChanges(ctx context.Context, key string, fn func(upper string) fs.ChangeFunc) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx = s.ctx(ctx)
	sn := s.sn()
	ms, err := sn.Mounts(ctx, key)
	if err != nil {
		return errors.Wrapf(err, "mounts of layer %s", key)
	}
	info, err := sn.Stat(ctx, key)
	if err != nil {
		return errors.Wrapf(err, "layer %s", key)
	}
	upper := upperDir(ms)
	if upper == "" && info.Parent == "" && len(ms) == 1 && ms[0].Type == "bind" {
		// overlayfs mounts a layer without parent (a container of a layerless image, as a build FROM
		// scratch makes) as a bind mount of its upper directory.
		upper = ms[0].Source
	}
	if upper == "" {
		return errdefs.ErrNotImplemented.WithMessage("reading a container's changes needs the overlayfs storage driver")
	}
	changeFn := fn(upper)
	if info.Parent == "" {
		empty, err := os.MkdirTemp("", "layer-base-")
		if err != nil {
			return err
		}
		defer os.Remove(empty)
		return fs.DiffDirChanges(ctx, empty, upper, fs.DiffSourceOverlayFS, changeFn)
	}
	// The view is a snapshot of its own: a short lease keeps the garbage collector off it meanwhile.
	lctx, done, err := s.client.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if err != nil {
		return errors.Wrap(err, "lease for the base of a diff")
	}
	defer done(context.WithoutCancel(ctx))
	viewKey := key + "-base-" + randomSuffix()
	base, err := sn.View(lctx, viewKey, info.Parent)
	if err != nil {
		return errors.Wrapf(err, "view of the image under layer %s", key)
	}
	defer sn.Remove(context.WithoutCancel(ctx), viewKey)
	return mount.WithReadonlyTempMount(ctx, base, func(root string) error {
		return fs.DiffDirChanges(ctx, root, upper, fs.DiffSourceOverlayFS, changeFn)
	})
}

func upperDir(ms []mount.Mount) string {
	for _, m := range ms {
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				return v
			}
		}
	}
	return ""
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
