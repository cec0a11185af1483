package store

import (
	"context"
	"strings"

	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func chainID(ids []digest.Digest) digest.Digest { return identity.ChainID(ids) }

// SetName points name (a normalized reference) at manifest, creating or moving the record. It returns the
// ID the name pointed at before ("" if none or unchanged). An image that loses its last name this way is
// kept as dangling, as dockerd keeps a retagged image as <none>.
func (s *Store) SetName(ctx context.Context, name string, manifest ocispec.Descriptor) (previous digest.Digest, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setNameLocked(ctx, name, manifest)
}

func (s *Store) setNameLocked(ctx context.Context, name string, manifest ocispec.Descriptor) (digest.Digest, error) {
	ctx = s.nsctx(ctx)
	is := s.client.ImageService()
	newInfo, err := s.manifest(ctx, manifest)
	if err != nil {
		return "", err
	}
	old, err := is.Get(ctx, name)
	var previous digest.Digest
	switch {
	case errdefs.IsNotFound(err):
		if _, err := is.Create(ctx, images.Image{Name: name, Target: manifest}); err != nil {
			if !errdefs.IsAlreadyExists(err) {
				return "", classify(err, "create image "+name)
			}
			if _, err := is.Update(ctx, images.Image{Name: name, Target: manifest}, "target"); err != nil {
				return "", classify(err, "update image "+name)
			}
		}
	case err != nil:
		return "", classify(err, "get image "+name)
	default:
		if old.Target.Digest == manifest.Digest {
			// Touch it so LastTagTime moves, as a re-tag does in dockerd.
			_, err := is.Update(ctx, images.Image{Name: name, Target: manifest}, "target")
			return "", classify(err, "update image "+name)
		}
		if oi, err := s.manifest(ctx, old.Target); err == nil && oi.config.Digest != newInfo.config.Digest {
			previous = oi.config.Digest
			// The dangling record must exist before the name moves: containerd may collect garbage in
			// between, and would take the old image's content.
			if err := s.keepIfOrphanLocked(ctx, old.Target, name); err != nil {
				return "", err
			}
		}
		if _, err := is.Update(ctx, images.Image{Name: name, Target: manifest}, "target"); err != nil {
			return "", classify(err, "update image "+name)
		}
	}
	// A named image needs no dangling record.
	if err := is.Delete(ctx, DanglingPrefix+manifest.Digest.String()); err != nil && !errdefs.IsNotFound(err) {
		return "", classify(err, "delete dangling record")
	}
	return previous, nil
}

// keepIfOrphanLocked gives the image behind target a dangling record when no record other than except
// refers to its config.
func (s *Store) keepIfOrphanLocked(ctx context.Context, target ocispec.Descriptor, except string) error {
	oi, err := s.manifest(ctx, target)
	if err != nil {
		return nil
	}
	recs, err := s.client.ImageService().List(ctx)
	if err != nil {
		return classify(err, "list images")
	}
	for _, r := range recs {
		if r.Name == except {
			continue
		}
		if mi, err := s.manifest(ctx, r.Target); err == nil && mi.config.Digest == oi.config.Digest {
			return nil
		}
	}
	return s.addDanglingLocked(ctx, target)
}

// AddDangling keeps an untagged image (e.g. loaded without names) alive.
func (s *Store) AddDangling(ctx context.Context, manifest ocispec.Descriptor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addDanglingLocked(s.nsctx(ctx), manifest)
}

func (s *Store) addDanglingLocked(ctx context.Context, manifest ocispec.Descriptor) error {
	_, err := s.client.ImageService().Create(ctx, images.Image{Name: DanglingPrefix + manifest.Digest.String(), Target: manifest})
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return classify(err, "create dangling record")
	}
	return nil
}

// RemoveName deletes one record. With keep, an image left without names gets a dangling record (rmi of a
// tag whose image a container still uses); otherwise the caller deletes the image next.
func (s *Store) RemoveName(ctx context.Context, name string, keep bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx = s.nsctx(ctx)
	is := s.client.ImageService()
	old, err := is.Get(ctx, name)
	if err != nil {
		return classify(err, "get image "+name)
	}
	if keep {
		// Before the delete, for the same reason as in setNameLocked.
		if err := s.keepIfOrphanLocked(ctx, old.Target, name); err != nil {
			return err
		}
	}
	if err := is.Delete(ctx, name); err != nil {
		return classify(err, "delete image "+name)
	}
	return nil
}

// Delete removes every record of img; containerd's garbage collector then frees its content and
// snapshots that nothing else (another image, a container's RW layer lease) still uses. With sync the
// collection runs before Delete returns, so a prune can report the space it freed.
func (s *Store) Delete(ctx context.Context, img *Image, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx = s.nsctx(ctx)
	is := s.client.ImageService()
	for i, r := range img.Records {
		var opts []images.DeleteOpt
		if sync && i == len(img.Records)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		if err := is.Delete(ctx, r.Name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return classify(err, "delete image "+r.Name)
		}
	}
	s.cacheMu.Lock()
	for n := 1; n <= len(img.Config.RootFS.DiffIDs); n++ {
		delete(s.ucache, chainID(img.Config.RootFS.DiffIDs[:n]))
	}
	s.cacheMu.Unlock()
	return nil
}

// NormalizeName turns a reference into the record name the store uses.
func NormalizeName(n reference.Named) string {
	return reference.TagNameOnly(n).String()
}

// IsDanglingName reports whether a record name is a dangling record.
func IsDanglingName(name string) bool { return strings.HasPrefix(name, DanglingPrefix) }

// CollectGarbage asks containerd to collect now (deleting a throw-away lease synchronously triggers it),
// so a prune's space is actually free when it answers. Failures only delay collection.
func (s *Store) CollectGarbage(ctx context.Context) {
	ctx = s.nsctx(ctx)
	ls := s.client.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID())
	if err != nil {
		return
	}
	_ = ls.Delete(ctx, l, leases.SynchronousDelete)
}
