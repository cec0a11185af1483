package store

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/images/archive"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// invalid classifies a failure caused by the client's bytes (a bad or truncated archive).
func invalid(err error, what string) error {
	if err == nil || errdefs.IsInvalidArgument(err) || errdefs.IsCanceled(err) {
		return err
	}
	return errdefs.ErrInvalidArgument.WithMessage(what + ": " + err.Error())
}

// WriteLayer stores a root filesystem tar (plain, gzip, bzip2, xz or zstd) as an uncompressed layer blob and
// returns its descriptor (whose digest is also its diff ID). The tar is checked entry by entry on the way:
// a truncated or non-tar stream, or an entry whose path or link target climbs out of the root, is an
// invalid argument, and the partial blob is discarded. ctx should carry a lease (WithLease).
func (s *Store) WriteLayer(ctx context.Context, r io.Reader) (ocispec.Descriptor, error) {
	ctx = s.nsctx(ctx)
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return ocispec.Descriptor{}, invalid(err, "read archive")
	}
	defer ds.Close()
	cs := s.client.ContentStore()
	ref := "berth-import-" + randomID()
	rw, err := content.OpenWriter(ctx, cs, content.WithRef(ref))
	if err != nil {
		return ocispec.Descriptor{}, classify(err, "open content writer")
	}
	w := NewAsyncWriter(rw)
	committed := false
	defer func() {
		w.Close()
		if !committed {
			_ = cs.Abort(ctx, ref)
		}
	}()
	if err := w.Truncate(0); err != nil {
		return ocispec.Descriptor{}, classify(err, "reset content writer")
	}
	cw := &countWriter{w: w}
	tee := io.TeeReader(ds, cw)
	if err := CheckTar(tee); err != nil {
		return ocispec.Descriptor{}, err
	}
	// The end-of-archive blocks and any padding belong to the blob too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return ocispec.Descriptor{}, invalid(err, "read archive")
	}
	if cw.err != nil {
		return ocispec.Descriptor{}, classify(cw.err, "write layer")
	}
	dgst := w.Digest()
	if err := w.Commit(ctx, cw.n, dgst); err != nil && !errdefs.IsAlreadyExists(err) {
		return ocispec.Descriptor{}, classify(err, "commit layer")
	}
	committed = true
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: dgst, Size: cw.n}, nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// CheckTar reads a tar stream to its end and refuses entries that would land outside the root: ".."
// components in names or hard-link targets. Truncated or malformed tars are invalid arguments.
func CheckTar(r io.Reader) error {
	return checkTar(r)
}

// checkTar is CheckTar; if r is an io.Seeker, entry bodies are skipped through it rather than read.
func checkTar(r io.Reader) error {
	tr := tar.NewReader(r)
	_, seeks := r.(io.Seeker)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return invalid(err, "invalid tar archive")
		}
		if err := checkEntryPath(hdr.Name); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeLink {
			if err := checkEntryPath(hdr.Linkname); err != nil {
				return err
			}
		}
		if seeks {
			// Next skips the body, and reports a body cut short.
			continue
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return invalid(err, "invalid tar archive: entry "+hdr.Name)
		}
	}
}

// traversalError is an archive entry (or hard link target) that leads out of the directory it is
// extracted in. Its class is InvalidArgument; its type is what tells it from a merely broken archive.
type traversalError struct{ name string }

func (e *traversalError) Error() string {
	return fmt.Sprintf("invalid tar archive: entry %q escapes the root filesystem", e.name)
}

func (e *traversalError) Unwrap() error { return errdefs.ErrInvalidArgument }

func checkEntryPath(name string) error {
	for _, part := range strings.Split(strings.ReplaceAll(name, "\\", "/"), "/") {
		if part == ".." {
			return &traversalError{name: name}
		}
	}
	return nil
}

// WriteImage writes config and an OCI manifest over layers, with the garbage-collection labels that keep
// them together, and returns the manifest's descriptor. ctx should carry a lease.
func (s *Store) WriteImage(ctx context.Context, config []byte, layers []ocispec.Descriptor) (ocispec.Descriptor, error) {
	ctx = s.nsctx(ctx)
	cs := s.client.ContentStore()
	cdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	if err := content.WriteBlob(ctx, cs, "berth-config-"+cdesc.Digest.Encoded(), strings.NewReader(string(config)), cdesc); err != nil {
		return ocispec.Descriptor{}, classify(err, "write image config")
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: layers}
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	labels := map[string]string{"containerd.io/gc.ref.content.config": cdesc.Digest.String()}
	for i, l := range layers {
		labels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = l.Digest.String()
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := content.WriteBlob(ctx, cs, "berth-manifest-"+mdesc.Digest.Encoded(), strings.NewReader(string(mb)), mdesc, content.WithLabels(labels)); err != nil {
		return ocispec.Descriptor{}, classify(err, "write manifest")
	}
	return mdesc, nil
}

// UnpackProgress is told about each layer: once with done false just before it is applied (not for
// layers whose snapshot exists), then with done true; applied is false when the snapshot existed.
type UnpackProgress func(layer ocispec.Descriptor, done, applied bool)

// Unpack applies the image's layers into the snapshotter (skipping those already there) and labels the
// config so the snapshots live as long as the image. Content that does not apply (a layer that is not a
// tar, a diff ID that does not match) is an invalid argument.
func (s *Store) Unpack(ctx context.Context, manifest ocispec.Descriptor, progress UnpackProgress) error {
	ctx = s.nsctx(ctx)
	mi, err := s.manifest(ctx, manifest)
	if err != nil {
		return err
	}
	diffIDs := mi.parsed.RootFS.DiffIDs
	if len(diffIDs) != len(mi.layers) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid image %s: %d layers but %d diff IDs", manifest.Digest, len(mi.layers), len(diffIDs)))
	}
	sn := s.sn()
	var chain []digest.Digest
	for i, l := range mi.layers {
		applied := false
		_, err := sn.Stat(ctx, identity.ChainID(append(chain, diffIDs[i])).String())
		if err != nil {
			if progress != nil {
				progress(l, false, false)
			}
			err = s.applyLayer(ctx, l, chain, diffIDs[i])
			applied = err == nil
			if isAlreadyExists(err) {
				err = nil
			}
		}
		if err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsCanceled(err) || errdefs.IsUnavailable(err) {
				return classify(err, "unpack layer "+l.Digest.String())
			}
			return invalid(err, "unpack layer "+l.Digest.String())
		}
		if progress != nil {
			progress(l, true, applied)
		}
		chain = append(chain, diffIDs[i])
	}
	if len(chain) == 0 {
		return nil
	}
	key := "containerd.io/gc.ref.snapshot." + s.cfg.Snapshotter
	_, err = s.client.ContentStore().Update(ctx, content.Info{Digest: mi.config.Digest, Labels: map[string]string{key: identity.ChainID(chain).String()}}, "labels."+key)
	return classify(err, "label image config")
}

// Loaded is one image found in an archive: its manifest and the names the archive gave it.
type Loaded struct {
	Manifest ocispec.Descriptor
	Names    []string
}

// ImportArchive reads a `docker save` archive or an OCI image layout into the content store and returns
// the images in it (an index resolves to this platform), with normalized names. Nothing is named yet; the
// layers extracted while they streamed in are in place, Unpack does the rest. ctx should carry a lease so
// a failure leaves nothing behind. Malformed archives are invalid arguments.
func (s *Store) ImportArchive(ctx context.Context, r io.Reader) ([]Loaded, error) {
	ctx = s.nsctx(ctx)
	cs := s.client.ContentStore()
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return nil, invalid(err, "read archive")
	}
	defer ds.Close()
	checked := newCheckingStore(cs, s.sn())
	checked.speculative = s.cfg.Snapshotter == "overlayfs"
	defer checked.dropSpecs(context.WithoutCancel(ctx))
	idxDesc, err := archive.ImportIndex(ctx, checked, ds)
	if werr := checked.wait(); err == nil {
		err = werr
	}
	if err != nil {
		if errdefs.IsUnavailable(err) || errdefs.IsCanceled(err) {
			return nil, classify(err, "load archive")
		}
		return nil, invalid(err, "invalid archive")
	}
	b, err := content.ReadBlob(ctx, cs, idxDesc)
	if err != nil {
		return nil, invalid(err, "invalid archive: index")
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, invalid(err, "invalid archive: index.json")
	}
	var out []Loaded
	byManifest := map[digest.Digest]int{}
	for _, m := range idx.Manifests {
		md, err := s.ResolveManifest(ctx, m)
		if err != nil {
			return nil, invalid(err, "invalid archive")
		}
		// Label the walk's content so the manifest keeps its config and layers once named.
		h := images.SetChildrenLabels(cs, images.ChildrenHandler(cs))
		if err := images.Walk(ctx, h, md); err != nil {
			return nil, invalid(err, "invalid archive: image "+md.Digest.String())
		}
		mi, err := s.manifest(ctx, md)
		if err != nil {
			return nil, invalid(err, "invalid archive")
		}
		for _, l := range mi.layers {
			if msg := checked.problem(l.Digest); msg != "" {
				return nil, errdefs.ErrInvalidArgument.WithMessage("layer " + l.Digest.String() + ": " + msg)
			}
		}
		if mi.parsed != nil {
			checked.place(ctx, mi.layers, mi.parsed.RootFS.DiffIDs, func(l ocispec.Descriptor, chain []digest.Digest, diffID digest.Digest) error {
				return s.applyLayer(ctx, l, chain, diffID)
			})
		}
		i, ok := byManifest[md.Digest]
		if !ok {
			i = len(out)
			byManifest[md.Digest] = i
			out = append(out, Loaded{Manifest: md})
		}
		name := m.Annotations[images.AnnotationImageName]
		if name == "" {
			if ref := m.Annotations[ocispec.AnnotationRefName]; ref != "" {
				name = ociRefName(ref)
			}
		}
		if name != "" {
			n, err := parseStoredName(name)
			if err != nil {
				return nil, err
			}
			out[i].Names = append(out[i].Names, n)
		}
	}
	if len(out) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid archive: no images found")
	}
	return out, nil
}

// ociRefName reads org.opencontainers.image.ref.name: a full reference, or just a tag (then there is no
// repository to name the image by, and it stays untagged).
func ociRefName(ref string) string {
	if strings.ContainsAny(ref, "/:@") && !strings.HasPrefix(ref, ":") {
		return ref
	}
	return ""
}

// ExportItem is one image to save, with the names to record for it (none: saved by ID).
type ExportItem struct {
	Manifest ocispec.Descriptor
	Names    []string
}

// Export writes images as an archive both `docker load` (manifest.json) and OCI tools (index.json) read.
func (s *Store) Export(ctx context.Context, w io.Writer, items []ExportItem) error {
	ctx = s.nsctx(ctx)
	opts := []archive.ExportOpt{archive.WithPlatform(platforms.All)}
	for _, it := range items {
		opts = append(opts, archive.WithManifest(it.Manifest, it.Names...))
	}
	if err := archive.Export(ctx, readAheadProvider{s.client.ContentStore()}, w, opts...); err != nil {
		return classify(err, "export images")
	}
	return nil
}

func parseStoredName(name string) (string, error) {
	n, err := normalizeRef(name)
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage("invalid archive: bad image name " + path.Clean(name))
	}
	return n, nil
}
