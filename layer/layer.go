// Package layer owns containers' read-write layers: a containerd snapshot per container, prepared on top of
// its image's committed chain, mounted, measured and removed. Every RW snapshot lives under its own
// containerd lease (no expiry), so containerd's garbage collector never takes it, nor the image layers below
// it, while the container exists, even after its image was deleted. It also holds the tar code of docker cp
// and export, including the handle-based extractor and directory writer that work on a running container's
// root without freezing it. It imports containerd; it must not import daemon or api/server.
package layer

import (
	"context"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

// Config says where RW layers go.
type Config struct {
	// Namespace is the containerd namespace (berthd uses "berth").
	Namespace string
	// Snapshotter is the one SelectSnapshotter chose.
	Snapshotter string
}

// Mount is one mount of a layer, in the shape of a runtime-spec mount (what the container spec needs).
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// Store prepares and removes RW layers. It is safe for concurrent use; calls on the same key are not
// serialized here (the container service owns its keys).
type Store struct {
	client *containerd.Client
	cfg    Config
}

// New returns a Store over client.
func New(client *containerd.Client, cfg Config) *Store {
	return &Store{client: client, cfg: cfg}
}

// Snapshotter names the snapshotter in use.
func (s *Store) Snapshotter() string { return s.cfg.Snapshotter }

const leasePrefix = "berth.layer."

func (s *Store) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, s.cfg.Namespace)
}

func (s *Store) sn() snapshots.Snapshotter { return s.client.SnapshotService(s.cfg.Snapshotter) }

func checkKey(key string) error {
	if key == "" || strings.ContainsAny(key, "/\x00") {
		return errdefs.ErrInvalidArgument.WithMessage("invalid layer key " + key)
	}
	return nil
}

// Prepare creates the RW layer key on top of parent (an image's chain ID; "" for an empty rootfs) and
// returns its mounts. An existing key is AlreadyExists; a missing parent is NotFound.
func (s *Store) Prepare(ctx context.Context, key string, parent digest.Digest, labels map[string]string) ([]Mount, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	ctx = s.ctx(ctx)
	ls := s.client.LeasesService()
	l, err := ls.Create(ctx, leases.WithID(leasePrefix+key), leases.WithLabels(map[string]string{"berth.layer": key}))
	created := err == nil
	switch {
	case errdefs.IsAlreadyExists(err):
		// Left by a removal that did not finish; reuse it (Prepare below still refuses an existing key).
		l = leases.Lease{ID: leasePrefix + key}
	case err != nil:
		return nil, errors.Wrapf(err, "create lease for layer %s", key)
	}
	lctx := leases.WithLease(ctx, l.ID)
	var opts []snapshots.Opt
	if len(labels) > 0 {
		opts = append(opts, snapshots.WithLabels(labels))
	}
	ms, err := s.sn().Prepare(lctx, key, string(parent), opts...)
	if err != nil {
		if created {
			_ = ls.Delete(ctx, l)
		}
		if errdefs.IsNotFound(err) {
			return nil, errdefs.ErrNotFound.WithMessage("prepare layer " + key + ": image layers " + string(parent) + " not found")
		}
		return nil, errors.Wrapf(err, "prepare layer %s", key)
	}
	return toMounts(ms), nil
}

// Mounts returns the mounts of an existing RW layer.
func (s *Store) Mounts(ctx context.Context, key string) ([]Mount, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	ms, err := s.sn().Mounts(s.ctx(ctx), key)
	if err != nil {
		return nil, errors.Wrapf(err, "mounts of layer %s", key)
	}
	return toMounts(ms), nil
}

// Mount mounts the layer on target (for copying image content into volumes and the like).
func (s *Store) Mount(ctx context.Context, key, target string) error {
	ms, err := s.sn().Mounts(s.ctx(ctx), key)
	if err != nil {
		return errors.Wrapf(err, "mounts of layer %s", key)
	}
	return mount.All(ms, target)
}

// Unmount undoes Mount.
func (s *Store) Unmount(ctx context.Context, target string) error {
	return mount.UnmountAll(target, 0)
}

// Size is the layer's own disk usage (what `docker ps -s` shows as the RW size).
func (s *Store) Size(ctx context.Context, key string) (int64, error) {
	u, err := s.sn().Usage(s.ctx(ctx), key)
	if err != nil {
		return 0, errors.Wrapf(err, "usage of layer %s", key)
	}
	return u.Size, nil
}

// Exists reports whether the RW layer key exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.sn().Stat(s.ctx(ctx), key)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Remove deletes the RW layer and its lease; a missing layer is not an error (removal is idempotent, as
// container removal retries it).
func (s *Store) Remove(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx = s.ctx(ctx)
	if err := s.sn().Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
		return errors.Wrapf(err, "remove layer %s", key)
	}
	err := s.client.LeasesService().Delete(ctx, leases.Lease{ID: leasePrefix + key})
	if err != nil && !errdefs.IsNotFound(err) {
		return errors.Wrapf(err, "remove lease of layer %s", key)
	}
	return nil
}

func toMounts(ms []mount.Mount) []Mount {
	out := make([]Mount, len(ms))
	for i, m := range ms {
		out[i] = Mount{Type: m.Type, Source: m.Source, Options: m.Options}
	}
	return out
}
