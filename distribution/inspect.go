package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Inspect is GET /distribution/{name}/json: the descriptor ref resolves to and its platforms (an index's
// entries, or a single manifest's from its config), read from the registry without storing anything.
// Errors follow dockerd: a missing tag or repository is NotFound "manifest unknown: manifest unknown",
// refused credentials Unauthenticated "unauthorized: authentication required" (or the registry's own
// words), an unreachable registry Unavailable.
func (s *Service) Inspect(ctx context.Context, ref reference.Named, auth *imagetypes.AuthConfig) (*imagetypes.DistributionInspect, error) {
	ctx = s.nsctx(ctx)
	res := s.resolver(auth)
	name, desc, err := res.Resolve(ctx, ref.String())
	if err != nil {
		return nil, inspectError(err)
	}
	fetcher, err := res.Fetcher(ctx, name)
	if err != nil {
		return nil, inspectError(err)
	}
	out := &imagetypes.DistributionInspect{
		Descriptor: imagetypes.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest.String(), Size: desc.Size},
		Platforms:  []imagetypes.Platform{},
	}
	b, err := fetchSmall(ctx, fetcher, desc, maxManifestSize)
	if err != nil {
		return nil, err
	}
	switch desc.MediaType {
	case images.MediaTypeDockerSchema2ManifestList, ocispec.MediaTypeImageIndex:
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: invalid index: %v", familiar(ref), err))
		}
		for _, m := range idx.Manifests {
			if m.Platform != nil {
				out.Platforms = append(out.Platforms, wirePlatform(*m.Platform))
			}
		}
	case images.MediaTypeDockerSchema2Manifest, ocispec.MediaTypeImageManifest:
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: invalid manifest: %v", familiar(ref), err))
		}
		cb, err := fetchSmall(ctx, fetcher, m.Config, maxConfigSize)
		if err != nil {
			return nil, err
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(cb, &cfg); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: invalid image config: %v", familiar(ref), err))
		}
		out.Platforms = append(out.Platforms, wirePlatform(cfg.Platform))
	default:
		return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("%s: unsupported manifest media type %q", familiar(ref), desc.MediaType))
	}
	return out, nil
}

func wirePlatform(p ocispec.Platform) imagetypes.Platform {
	return imagetypes.Platform{Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion, OSFeatures: p.OSFeatures, Variant: p.Variant}
}

// fetchSmall reads one blob of at most limit bytes into memory, verified against its digest.
func fetchSmall(ctx context.Context, f remotes.Fetcher, d ocispec.Descriptor, limit int64) ([]byte, error) {
	if d.Size > limit || d.Size < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("blob %s is too large (%d bytes)", d.Digest, d.Size))
	}
	rc, err := f.Fetch(ctx, d)
	if err != nil {
		return nil, inspectError(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, inspectError(err)
	}
	if int64(len(b)) != d.Size || d.Digest.Validate() != nil || d.Digest.Algorithm().FromBytes(b) != d.Digest {
		return nil, errdefs.ErrDataLoss.WithMessage(fmt.Sprintf("content of %s does not match its digest", d.Digest))
	}
	return b, nil
}

func inspectError(err error) error {
	err = classify(err)
	var re *RegistryError
	switch {
	case errdefs.IsCanceled(err) || errors.Is(err, context.Canceled):
		return err
	case isAuthError(err):
		return unauthenticated(err)
	case errdefs.IsNotFound(err):
		if errors.As(err, &re) && len(re.Codes) > 0 {
			return errdefs.ErrNotFound.WithMessage(re.Error())
		}
		return errdefs.ErrNotFound.WithMessage("manifest unknown: manifest unknown")
	}
	return err
}
