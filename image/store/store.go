// Package store owns berthd's images as containerd keeps them: every name (tag or digest reference) is a
// containerd image record in the daemon's namespace whose target is one platform's manifest; the image's
// identity is its config digest, as dockerd shows it. Untagged images that must survive (the previous holder
// of a moved tag, a loaded image without names) get a record named "berth-dangling@<manifest digest>".
// Blobs live in containerd's content store, layers in its snapshotter; writes happen under a containerd
// lease so a failed import leaves nothing that garbage collection will not remove.
//
// It imports containerd and image; it must not import daemon or api/server.
package store

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berthd/image"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// DanglingPrefix names the records that keep untagged images alive.
const DanglingPrefix = "berth-dangling@"

// Config configures the store.
type Config struct {
	// Namespace is the containerd namespace ("berth").
	Namespace string
	// Snapshotter unpacks image layers.
	Snapshotter string
	// Platform is the platform an index resolves to; empty means the host's (linux/amd64 here).
	Platform *ocispec.Platform
}

// Record is one name of an image.
type Record struct {
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Image is an image with all names pointing at it.
type Image struct {
	ID        image.ID
	Config    *image.Config
	RawConfig []byte
	Manifest  ocispec.Descriptor
	Layers    []ocispec.Descriptor
	Records   []Record
	// LayerSizesCache is free for callers to keep LayerSizes in while they work on the image.
	LayerSizesCache []int64
}

// RepoTags are the image's tag references in familiar form, sorted.
func (i *Image) RepoTags() []string { return i.names(false) }

// RepoDigests are the image's digest references in familiar form, sorted.
func (i *Image) RepoDigests() []string { return i.names(true) }

func (i *Image) names(digested bool) []string {
	out := []string{}
	for _, r := range i.Records {
		if strings.HasPrefix(r.Name, DanglingPrefix) {
			continue
		}
		n, err := reference.ParseNormalizedNamed(r.Name)
		if err != nil {
			continue
		}
		_, isDigest := n.(reference.Digested)
		if isDigest == digested {
			out = append(out, reference.FamiliarString(n))
		}
	}
	sort.Strings(out)
	return out
}

// Named reports whether the image has at least one tag or digest reference.
func (i *Image) Named() bool {
	for _, r := range i.Records {
		if !strings.HasPrefix(r.Name, DanglingPrefix) {
			return true
		}
	}
	return false
}

// LastTagTime is the newest record update.
func (i *Image) LastTagTime() time.Time {
	var t time.Time
	for _, r := range i.Records {
		if r.UpdatedAt.After(t) {
			t = r.UpdatedAt
		}
	}
	return t
}

// Store is the image store. It is safe for concurrent use; name changes are serialized by one lock so the
// dangling bookkeeping stays consistent.
type Store struct {
	client   *containerd.Client
	cfg      Config
	platform platforms.MatchComparer

	mu sync.Mutex // serializes name changes

	cacheMu sync.Mutex
	mcache  map[digest.Digest]*manifestInfo // by manifest digest; content is immutable
	ucache  map[digest.Digest]int64         // snapshot usage by chain ID
}

type manifestInfo struct {
	config ocispec.Descriptor
	layers []ocispec.Descriptor
	raw    []byte
	parsed *image.Config
}

// New returns a store over client; it checks that containerd answers.
func New(ctx context.Context, cfg Config, client *containerd.Client) (*Store, error) {
	if cfg.Namespace == "" || cfg.Snapshotter == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("image store: namespace and snapshotter are required")
	}
	p := platforms.DefaultSpec()
	if cfg.Platform != nil {
		p = *cfg.Platform
	}
	s := &Store{
		client: client, cfg: cfg, platform: platforms.Only(p),
		mcache: map[digest.Digest]*manifestInfo{}, ucache: map[digest.Digest]int64{},
	}
	if _, err := client.ImageService().List(s.nsctx(ctx)); err != nil {
		return nil, classify(err, "list images")
	}
	return s, nil
}

// Snapshotter names the snapshotter image layers are unpacked into.
func (s *Store) Snapshotter() string { return s.cfg.Snapshotter }

// Platform is the platform indexes resolve to.
func (s *Store) Platform() platforms.MatchComparer { return s.platform }

// Client is the containerd client (for distribution, which shares the store's content).
func (s *Store) Client() *containerd.Client { return s.client }

func (s *Store) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, s.cfg.Namespace)
}

// WithNamespace returns ctx bound to the store's namespace (for callers that talk to containerd too).
func (s *Store) WithNamespace(ctx context.Context) context.Context { return s.nsctx(ctx) }

// WithLease returns ctx under a new temporary lease (24 h, as containerd's client does); done ends it.
// Everything written under it is kept only if an image record refers to it by the time done runs.
func (s *Store) WithLease(ctx context.Context) (context.Context, func(context.Context) error, error) {
	ctx = s.nsctx(ctx)
	if _, ok := leases.FromContext(ctx); ok {
		return ctx, func(context.Context) error { return nil }, nil
	}
	l, err := s.client.LeasesService().Create(ctx, leases.WithRandomID(), leases.WithExpiration(24*time.Hour))
	if err != nil {
		return ctx, nil, classify(err, "create lease")
	}
	return leases.WithLease(ctx, l.ID), func(ctx context.Context) error {
		return s.client.LeasesService().Delete(s.nsctx(ctx), l)
	}, nil
}

// ContentStore is containerd's content store.
func (s *Store) ContentStore() content.Store { return s.client.ContentStore() }

func (s *Store) sn() snapshots.Snapshotter { return s.client.SnapshotService(s.cfg.Snapshotter) }

// manifest reads (and caches) a single-platform manifest and its config.
func (s *Store) manifest(ctx context.Context, desc ocispec.Descriptor) (*manifestInfo, error) {
	s.cacheMu.Lock()
	mi, ok := s.mcache[desc.Digest]
	s.cacheMu.Unlock()
	if ok {
		return mi, nil
	}
	cs := s.client.ContentStore()
	b, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return nil, classify(err, "read manifest "+desc.Digest.String())
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid manifest " + desc.Digest.String() + ": " + err.Error())
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid manifest " + desc.Digest.String() + ": bad config digest")
	}
	raw, err := content.ReadBlob(ctx, cs, m.Config)
	if err != nil {
		return nil, classify(err, "read image config "+m.Config.Digest.String())
	}
	cfg, err := image.ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	mi = &manifestInfo{config: m.Config, layers: m.Layers, raw: raw, parsed: cfg}
	s.cacheMu.Lock()
	s.mcache[desc.Digest] = mi
	s.cacheMu.Unlock()
	return mi, nil
}

// ResolveManifest turns an index into this platform's manifest; a manifest is returned as it is.
func (s *Store) ResolveManifest(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	return s.ResolveManifestFor(ctx, desc, s.platform)
}

// ResolveManifestFor is ResolveManifest for a given platform.
func (s *Store) ResolveManifestFor(ctx context.Context, desc ocispec.Descriptor, platform platforms.MatchComparer) (ocispec.Descriptor, error) {
	ctx = s.nsctx(ctx)
	if images.IsManifestType(desc.MediaType) {
		return desc, nil
	}
	if !images.IsIndexType(desc.MediaType) {
		return ocispec.Descriptor{}, errdefs.ErrInvalidArgument.WithMessage("unsupported media type " + desc.MediaType)
	}
	b, err := content.ReadBlob(ctx, s.client.ContentStore(), desc)
	if err != nil {
		return ocispec.Descriptor{}, classify(err, "read index")
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return ocispec.Descriptor{}, errdefs.ErrInvalidArgument.WithMessage("invalid index " + desc.Digest.String() + ": " + err.Error())
	}
	var cands []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Platform == nil || platform.Match(*m.Platform) {
			cands = append(cands, m)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].Platform == nil {
			return false
		}
		if cands[j].Platform == nil {
			return true
		}
		return platform.Less(*cands[i].Platform, *cands[j].Platform)
	})
	for _, c := range cands {
		if images.IsManifestType(c.MediaType) {
			return c, nil
		}
		if images.IsIndexType(c.MediaType) {
			if d, err := s.ResolveManifestFor(ctx, c, platform); err == nil {
				return d, nil
			}
		}
	}
	return ocispec.Descriptor{}, errdefs.ErrNotFound.WithMessage("no matching manifest for the requested platform in the manifest list entries")
}

// List returns every image, grouped by ID, sorted newest first.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	ctx = s.nsctx(ctx)
	recs, err := s.client.ImageService().List(ctx)
	if err != nil {
		return nil, classify(err, "list images")
	}
	byID := map[image.ID]*Image{}
	var out []*Image
	for _, r := range recs {
		mi, err := s.manifest(ctx, r.Target)
		if err != nil {
			// A record whose content is gone (or foreign) is not an image we can show.
			continue
		}
		img, ok := byID[mi.config.Digest]
		if !ok {
			img = &Image{ID: mi.config.Digest, Config: mi.parsed, RawConfig: mi.raw, Manifest: r.Target, Layers: mi.layers}
			byID[img.ID] = img
			out = append(out, img)
		}
		img.Records = append(img.Records, Record{Name: r.Name, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
	}
	sort.SliceStable(out, func(i, j int) bool { return created(out[i]).After(created(out[j])) })
	return out, nil
}

func created(i *Image) time.Time {
	if i.Config.Created != nil {
		return *i.Config.Created
	}
	return time.Time{}
}

// Get finds an image as dockerd does: a full or short ID, a digest reference, or a name (":latest" added).
// Not found is NotFound "No such image: <ref>".
func (s *Store) Get(ctx context.Context, ref string) (*Image, error) {
	imgs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	return Find(imgs, ref)
}

// Find is Get over a listing already made.
func Find(imgs []*Image, ref string) (*Image, error) {
	notFound := errdefs.ErrNotFound.WithMessage("No such image: " + ref)
	if ref == "" {
		return nil, notFound
	}
	if d, err := digest.Parse(ref); err == nil {
		for _, i := range imgs {
			if i.ID == d {
				return i, nil
			}
		}
		return nil, notFound
	}
	n, perr := image.ParseNamed(ref)
	if perr == nil {
		name := reference.TagNameOnly(n).String()
		for _, i := range imgs {
			for _, r := range i.Records {
				if r.Name == name {
					return i, nil
				}
			}
		}
	}
	if image.IsHexPrefix(ref) {
		prefix := strings.TrimPrefix(ref, "sha256:")
		var found *Image
		for _, i := range imgs {
			if strings.HasPrefix(i.ID.Encoded(), prefix) {
				if found != nil && found.ID != i.ID {
					return nil, errdefs.ErrNotFound.WithMessage("No such image: " + ref + " (ambiguous short ID)")
				}
				found = i
			}
		}
		if found != nil {
			return found, nil
		}
	}
	if perr != nil {
		// Neither a name nor an ID: dockerd answers 400 with the grammar's reason, not 404.
		return nil, perr
	}
	return nil, notFound
}

// Size is the image's unpacked size: the sum of its layers' snapshot usage, or of the layer blobs when the
// image is not unpacked.
func (s *Store) Size(ctx context.Context, img *Image) int64 {
	var total int64
	for _, sz := range s.LayerSizes(ctx, img) {
		total += sz
	}
	return total
}

// LayerSizes returns each layer's size (snapshot usage, or blob size when not unpacked), bottom first.
// Usage of committed snapshots never changes, so it is cached by chain ID.
func (s *Store) LayerSizes(ctx context.Context, img *Image) []int64 {
	ctx = s.nsctx(ctx)
	ids := img.Config.RootFS.DiffIDs
	out := make([]int64, len(ids))
	for n := 1; n <= len(ids); n++ {
		chain := chainID(ids[:n])
		s.cacheMu.Lock()
		u, ok := s.ucache[chain]
		s.cacheMu.Unlock()
		if !ok {
			usage, err := s.sn().Usage(ctx, chain.String())
			if err != nil {
				if n-1 < len(img.Layers) {
					out[n-1] = img.Layers[n-1].Size
				}
				continue
			}
			u = usage.Size
			s.cacheMu.Lock()
			s.ucache[chain] = u
			s.cacheMu.Unlock()
		}
		out[n-1] = u
	}
	return out
}

// classify adds context to a containerd error. Its class survives: the containerd client turns gRPC codes
// back into errdefs classes, and errors.Wrap keeps them reachable.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	return errors.Wrap(err, what)
}

// Target returns the manifest a record name points at.
func (s *Store) Target(ctx context.Context, name string) (ocispec.Descriptor, error) {
	r, err := s.client.ImageService().Get(s.nsctx(ctx), name)
	if err != nil {
		return ocispec.Descriptor{}, classify(err, "get image "+name)
	}
	return r.Target, nil
}

// IsUnpacked reports whether the image's top snapshot exists.
func (s *Store) IsUnpacked(ctx context.Context, img *Image) bool {
	chain := img.Config.ChainID()
	if chain == "" {
		return true
	}
	_, err := s.sn().Stat(s.nsctx(ctx), chain.String())
	return err == nil
}

// ConfigDigest is the ID of the image a manifest describes.
func (s *Store) ConfigDigest(ctx context.Context, manifest ocispec.Descriptor) (digest.Digest, error) {
	mi, err := s.manifest(s.nsctx(ctx), manifest)
	if err != nil {
		return "", err
	}
	return mi.config.Digest, nil
}
