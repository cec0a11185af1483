package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Registry access without containerd's content store, for content that is not an image (managed plugins):
// a manifest and its config are fetched into memory, layers are streamed (verified) to the caller, and
// pushes read their blobs from any content.Provider (e.g. files in a temp dir).

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

// PushFrom is Push with the manifest and its blobs read from provider instead of containerd's content
// store (same progress messages, same errors).
func (s *Service) PushFrom(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, provider content.Provider, auth *imagetypes.AuthConfig, out ProgressFunc) error {
	return s.push(ctx, ref, manifest, provider, auth, out)
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
