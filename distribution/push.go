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
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Push uploads manifest (with its config and layers) to ref's repository and tags it, reporting dockerd's
// messages ("The push refers to repository [...]", per-layer "Preparing"/"Pushing"/"Pushed", the closing
// "<tag>: digest: <d> size: <n>" and its aux result).
func (s *Service) Push(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, auth *imagetypes.AuthConfig, out ProgressFunc) error {
	cs := s.client.ContentStore()
	return s.push(ctx, ref, manifest, cs, cs, auth, out)
}

// push uploads manifest's tree read from cs. sources, when not nil, is where blobs' distribution sources
// are remembered (containerd's "containerd.io/distribution.source.<registry>" labels, written on pull and
// push as dockerd keeps its v2 metadata): a blob the registry has in another repository is mounted from
// there ("Mounted from <repo>") instead of sent again, falling back to an upload when the mount is refused.
func (s *Service) push(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, cs content.Provider, sources content.Manager, auth *imagetypes.AuthConfig, out ProgressFunc) error {
	ctx = s.nsctx(ctx)
	emit := func(m imagetypes.JSONMessage) {
		if out != nil {
			out(m)
		}
	}
	emit(imagetypes.JSONMessage{Status: "The push refers to repository [" + ref.Name() + "]"})
	tracker := docker.NewInMemoryTracker()
	pusher, err := s.resolverWith(auth, tracker).Pusher(ctx, ref.String())
	if err != nil {
		return pushError(ref, err)
	}
	// Announce the layers top first, as dockerd lists them.
	if b, err := readManifestLayers(ctx, cs, manifest); err == nil {
		for i := len(b) - 1; i >= 0; i-- {
			emit(imagetypes.JSONMessage{Status: "Preparing", ID: shortID(b[i].Digest.String())})
		}
	}
	var remember images.HandlerFunc
	if sources != nil {
		if remember, err = docker.AppendDistributionSourceLabel(sources, ref.String()); err != nil {
			return pushError(ref, err)
		}
	}
	var mu sync.Mutex
	opened := &sync.Map{}
	wrapper := func(h images.Handler) images.Handler {
		return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			layer := images.IsLayerType(desc.MediaType)
			children, err := h.Handle(ctx, desc)
			if err == nil && remember != nil && !isIndexOrManifest(desc.MediaType) {
				// Only a hint for later mounts: a failure costs an upload, not this push.
				if _, lerr := remember(ctx, desc); lerr != nil {
					log.G(ctx).WithError(lerr).WithField("digest", desc.Digest).Debug("push: cannot record distribution source")
				}
			}
			if err == nil && layer {
				status := "Layer already exists"
				if _, ok := opened.Load(desc.Digest); ok {
					status = "Pushed"
				} else if st, serr := tracker.GetStatus(remotes.MakeRefKey(ctx, desc)); serr == nil && st.MountedFrom != "" {
					status = "Mounted from " + mountedRepo(st.MountedFrom)
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
	if err := remotes.PushContent(ctx, pusher, manifest, pushProvider{Provider: cs, sources: sources, emit: locked, opened: opened}, s.uploadLimiter(), platforms.All, wrapper); err != nil {
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

// mountedRepo turns containerd's "<host>/<repo>" into the repository path dockerd names.
func mountedRepo(from string) string {
	if _, repo, ok := strings.Cut(from, "/"); ok {
		return repo
	}
	return from
}

func isIndexOrManifest(mt string) bool {
	switch mt {
	case images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2ManifestList,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex:
		return true
	}
	return false
}

func readManifestLayers(ctx context.Context, cs content.Provider, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	m, err := images.Manifest(ctx, cs, desc, platforms.All)
	if err != nil {
		return nil, err
	}
	return m.Layers, nil
}

// pushError is pullError's counterpart for pushes: refused credentials are Unauthenticated with the
// registry's own words (dockerd's "unauthorized: authentication required" when it gave none).
func pushError(ref reference.Named, err error) error {
	err = classify(err)
	switch {
	case errdefs.IsCanceled(err) || errors.Is(err, context.Canceled):
		return err
	case isAuthError(err):
		return unauthenticated(err)
	case errdefs.IsUnavailable(err):
		return err
	case errdefs.IsNotFound(err):
		return errdefs.ErrNotFound.WithMessage("push " + familiar(ref) + ": " + err.Error())
	}
	return errors.Wrapf(err, "push %s", familiar(ref))
}
