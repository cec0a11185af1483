package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Push uploads manifest (with its config and layers) to ref's repository and tags it, reporting dockerd's
// messages ("The push refers to repository [...]", per-layer "Preparing"/"Pushing"/"Pushed", the closing
// "<tag>: digest: <d> size: <n>" and its aux result).
func (s *Service) Push(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, auth *imagetypes.AuthConfig, out ProgressFunc) error {
	return s.push(ctx, ref, manifest, s.client.ContentStore(), auth, out)
}

func (s *Service) push(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, cs content.Provider, auth *imagetypes.AuthConfig, out ProgressFunc) error {
	ctx = s.nsctx(ctx)
	emit := func(m imagetypes.JSONMessage) {
		if out != nil {
			out(m)
		}
	}
	emit(imagetypes.JSONMessage{Status: "The push refers to repository [" + ref.Name() + "]"})
	pusher, err := s.resolver(auth).Pusher(ctx, ref.String())
	if err != nil {
		return pushError(ref, err)
	}
	// Announce the layers top first, as dockerd lists them.
	if b, err := readManifestLayers(ctx, cs, manifest); err == nil {
		for i := len(b) - 1; i >= 0; i-- {
			emit(imagetypes.JSONMessage{Status: "Preparing", ID: shortID(b[i].Digest.String())})
		}
	}
	var mu sync.Mutex
	opened := &sync.Map{}
	wrapper := func(h images.Handler) images.Handler {
		return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			layer := images.IsLayerType(desc.MediaType)
			children, err := h.Handle(ctx, desc)
			if err == nil && layer {
				status := "Layer already exists"
				if _, ok := opened.Load(desc.Digest); ok {
					status = "Pushed"
				}
				mu.Lock()
				emit(imagetypes.JSONMessage{Status: status, ID: shortID(desc.Digest.String())})
				mu.Unlock()
			}
			return children, err
		})
	}
	locked := func(m imagetypes.JSONMessage) {
		mu.Lock()
		emit(m)
		mu.Unlock()
	}
	if err := remotes.PushContent(ctx, pusher, manifest, pushProvider{Provider: cs, emit: locked, opened: opened}, s.uploadLimiter(), platforms.All, wrapper); err != nil {
		return pushError(ref, err)
	}
	tag := "latest"
	if t, ok := ref.(reference.Tagged); ok {
		tag = t.Tag()
	}
	emit(imagetypes.JSONMessage{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, manifest.Digest, manifest.Size)})
	aux, _ := json.Marshal(imagetypes.PushResult{Tag: tag, Digest: manifest.Digest.String(), Size: int(manifest.Size)})
	raw := json.RawMessage(aux)
	emit(imagetypes.JSONMessage{Aux: &raw})
	return nil
}

func readManifestLayers(ctx context.Context, cs content.Provider, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	m, err := images.Manifest(ctx, cs, desc, platforms.All)
	if err != nil {
		return nil, err
	}
	return m.Layers, nil
}

func pushError(ref reference.Named, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "401 Unauthorized") || strings.Contains(msg, "no basic auth credentials"):
		return errdefs.ErrUnauthenticated.WithMessage("unauthorized: authentication required")
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "dial tcp"):
		return errdefs.ErrUnavailable.WithMessage(msg)
	case errdefs.IsNotFound(err):
		return errdefs.ErrNotFound.WithMessage("push " + familiar(ref) + ": " + msg)
	}
	return errors.Wrapf(err, "push %s", familiar(ref))
}
