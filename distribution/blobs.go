package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Registry access without containerd's content store, for content that is not an image (managed plugins):
// a manifest and its config are fetched into memory, layers are streamed (verified) and unpacked into a
// directory, and pushes read their blobs from files.

const (
	// maxManifestSize and maxConfigSize bound what FetchManifest reads into memory.
	maxManifestSize = 4 << 20
	maxConfigSize   = 4 << 20
)

// RemoteManifest is a single-platform manifest as a registry serves it, with its config blob.
type RemoteManifest struct {
	// Name is the resolved name blobs are fetched from.
	Name string
	// Desc is the manifest's descriptor.
	Desc     ocispec.Descriptor
	Manifest ocispec.Manifest
	Config   []byte
}

// FetchManifest resolves ref and fetches its manifest and config blob (both verified). An index or
// manifest list is refused (InvalidArgument): the caller asked for one artifact, not a choice of platforms.
// Errors are classified as Resolve's.
func (s *Service) FetchManifest(ctx context.Context, ref reference.Named, auth *imagetypes.AuthConfig) (*RemoteManifest, error) {
	ctx = s.nsctx(ctx)
	res := s.resolver(auth)
	name, desc, err := res.Resolve(ctx, ref.String())
	if err != nil {
		return nil, pullError(ref, err)
	}
	switch desc.MediaType {
	case images.MediaTypeDockerSchema2Manifest, ocispec.MediaTypeImageManifest:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: unsupported manifest media type %q", familiar(ref), desc.MediaType))
	}
	if desc.Size > maxManifestSize {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: manifest too large", familiar(ref)))
	}
	fetcher, err := res.Fetcher(ctx, name)
	if err != nil {
		return nil, pullError(ref, err)
	}
	fetch := func(d ocispec.Descriptor, limit int64) ([]byte, error) {
		if d.Size > limit || d.Size < 0 {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: blob %s too large", familiar(ref), d.Digest))
		}
		rc, err := fetcher.Fetch(ctx, d)
		if err != nil {
			return nil, pullError(ref, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
		if err != nil {
			return nil, pullError(ref, err)
		}
		if int64(len(b)) != d.Size || d.Digest.Validate() != nil || d.Digest.Algorithm().FromBytes(b) != d.Digest {
			return nil, errdefs.ErrDataLoss.WithMessage(fmt.Sprintf("%s: content of %s does not match its digest", familiar(ref), d.Digest))
		}
		return b, nil
	}
	mb, err := fetch(desc, maxManifestSize)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: invalid manifest: %v", familiar(ref), err))
	}
	cb, err := fetch(m.Config, maxConfigSize)
	if err != nil {
		return nil, err
	}
	return &RemoteManifest{Name: name, Desc: desc, Manifest: m, Config: cb}, nil
}

// OpenBlob streams one blob of rm (a layer). The reader fails, at the latest on its last Read, when the
// content is longer than desc.Size or does not match desc.Digest; read it to EOF before trusting it.
func (s *Service) OpenBlob(ctx context.Context, ref reference.Named, rm *RemoteManifest, desc ocispec.Descriptor, auth *imagetypes.AuthConfig) (io.ReadCloser, error) {
	ctx = s.nsctx(ctx)
	if err := desc.Digest.Validate(); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: invalid digest %q", familiar(ref), desc.Digest))
	}
	fetcher, err := s.resolver(auth).Fetcher(ctx, rm.Name)
	if err != nil {
		return nil, pullError(ref, err)
	}
	rc, err := fetcher.Fetch(ctx, desc)
	if err != nil {
		return nil, pullError(ref, err)
	}
	return &verifiedReader{rc: rc, r: io.LimitReader(rc, desc.Size+1), v: desc.Digest.Verifier(), desc: desc}, nil
}

type verifiedReader struct {
	rc   io.ReadCloser
	r    io.Reader
	v    digest.Verifier
	desc ocispec.Descriptor
	n    int64
}

func (r *verifiedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	_, _ = r.v.Write(p[:n])
	if r.n > r.desc.Size {
		return n, errdefs.ErrDataLoss.WithMessage(fmt.Sprintf("blob %s is larger than its descriptor says", r.desc.Digest))
	}
	if err == io.EOF && (r.n != r.desc.Size || !r.v.Verified()) {
		return n, errdefs.ErrDataLoss.WithMessage(fmt.Sprintf("content of blob %s does not match its digest", r.desc.Digest))
	}
	return n, err
}

func (r *verifiedReader) Close() error { return r.rc.Close() }

// PushFiles is Push with the manifest and its blobs read from files instead of containerd's content
// store (same progress messages, same errors).
func (s *Service) PushFiles(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, files FileProvider, auth *imagetypes.AuthConfig, out ProgressFunc) error {
	return s.push(ctx, ref, manifest, files, nil, auth, out)
}

// ApplyLayers downloads rm's layers in order and applies them to dir with containerd's archive.Apply
// (which keeps every entry, and every link, inside dir; whiteouts are honoured), verifying each blob's
// digest and, for each i < len(diffIDs), the digest of the uncompressed layer. Progress is dockerd's
// ("Pulling from", "Pulling fs layer", "Downloading", "Download complete").
func (s *Service) ApplyLayers(ctx context.Context, ref reference.Named, rm *RemoteManifest, auth *imagetypes.AuthConfig, dir string, diffIDs []string, out ProgressFunc) error {
	emit := func(m imagetypes.JSONMessage) {
		if out != nil {
			out(m)
		}
	}
	for _, l := range rm.Manifest.Layers {
		if !images.IsLayerType(l.MediaType) {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: unsupported layer media type %q", familiar(ref), l.MediaType))
		}
	}
	tag := "latest"
	if t, ok := ref.(reference.Tagged); ok {
		tag = t.Tag()
	} else if c, ok := ref.(reference.Canonical); ok {
		tag = c.Digest().String()
	}
	emit(imagetypes.JSONMessage{Status: "Pulling from " + reference.FamiliarName(ref), ID: tag})
	for _, l := range rm.Manifest.Layers {
		emit(imagetypes.JSONMessage{Status: "Pulling fs layer", ID: shortID(l.Digest.String())})
	}
	for i, l := range rm.Manifest.Layers {
		want := ""
		if i < len(diffIDs) {
			want = diffIDs[i]
		}
		if err := s.applyLayer(ctx, ref, rm, l, auth, dir, want, emit); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) applyLayer(ctx context.Context, ref reference.Named, rm *RemoteManifest, l ocispec.Descriptor, auth *imagetypes.AuthConfig, dir, diffID string, emit ProgressFunc) error {
	id := shortID(l.Digest.String())
	rc, err := s.OpenBlob(ctx, ref, rm, l, auth)
	if err != nil {
		return err
	}
	defer rc.Close()
	cr := &countingReader{r: rc, total: l.Size, report: func(n int64) {
		emit(imagetypes.JSONMessage{Status: "Downloading", ID: id, Progress: &imagetypes.JSONProgress{Current: n, Total: l.Size}})
	}}
	dr, err := compression.DecompressStream(cr)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("layer %s: %v", l.Digest, err))
	}
	defer dr.Close()
	v := digest.SHA256.Digester()
	tee := io.TeeReader(dr, v.Hash())
	if _, err := archive.Apply(ctx, dir, tee); err != nil {
		return errors.Wrapf(err, "applying layer %s", l.Digest)
	}
	// Read both streams to their ends: the blob's digest is checked at EOF.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return errors.Wrapf(err, "layer %s", l.Digest)
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return errors.Wrapf(err, "layer %s", l.Digest)
	}
	if got := v.Digest().String(); diffID != "" && got != diffID {
		return errdefs.ErrDataLoss.WithMessage(fmt.Sprintf("layer %s: diff ID %s does not match the config's %s", l.Digest, got, diffID))
	}
	emit(imagetypes.JSONMessage{Status: "Download complete", ID: id})
	return nil
}

// countingReader reports how much was read, at most every 200 ms (and at the end).
type countingReader struct {
	r      io.Reader
	n      int64
	total  int64
	last   time.Time
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 && (time.Since(c.last) >= 200*time.Millisecond || c.n >= c.total) {
		c.last = time.Now()
		c.report(c.n)
	}
	return n, err
}

// FileProvider serves blobs from files, by digest: enough for PushFrom.
type FileProvider map[digest.Digest]string

// ReaderAt implements content.Provider.
func (p FileProvider) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	path, ok := p[desc.Digest]
	if !ok {
		return nil, errdefs.ErrNotFound.WithMessage("blob " + desc.Digest.String() + " not found")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "open blob")
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return fileReaderAt{File: f, size: fi.Size()}, nil
}

type fileReaderAt struct {
	*os.File
	size int64
}

func (f fileReaderAt) Size() int64 { return f.size }
