package distribution

import (
	"context"
	"strings"
	"sync"
	"time"

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

// Resolved is what a registry says a reference points at.
type Resolved struct {
	Name string
	Desc ocispec.Descriptor
}

// Resolve asks the registry what ref points at, without fetching. A missing repository or tag is NotFound
// with dockerd's message; refused credentials are NotFound "pull access denied ..." as dockerd reports
// them; an unreachable registry is Unavailable.
func (s *Service) Resolve(ctx context.Context, ref reference.Named, auth *imagetypes.AuthConfig) (Resolved, error) {
	ctx = s.nsctx(ctx)
	name, desc, err := s.resolver(auth).Resolve(ctx, ref.String())
	if err != nil {
		return Resolved{}, pullError(ref, err)
	}
	return Resolved{Name: name, Desc: desc}, nil
}

func pullError(ref reference.Named, err error) error {
	msg := err.Error()
	switch {
	case errdefs.IsNotFound(err):
		return errdefs.ErrNotFound.WithMessage("manifest for " + familiar(ref) + " not found: manifest unknown: manifest unknown")
	case strings.Contains(msg, "401 Unauthorized") || strings.Contains(msg, "403 Forbidden") || strings.Contains(msg, "no basic auth credentials") || strings.Contains(msg, "unauthorized"):
		return errdefs.ErrNotFound.WithMessage("pull access denied for " + reference.FamiliarName(ref) + ", repository does not exist or may require 'docker login': " + msg)
	case errdefs.IsCanceled(err) || errors.Is(err, context.Canceled):
		return err
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "dial tcp"):
		return errdefs.ErrUnavailable.WithMessage(msg)
	}
	return errors.Wrapf(err, "pull %s", familiar(ref))
}

// Fetch downloads what r points at (an index is narrowed to platform) into the content store, with the
// labels that keep a manifest's children alive, reporting per-layer progress as dockerd does ("Pulling fs
// layer", "Downloading", "Download complete", "Already exists"). ctx must carry a lease.
func (s *Service) Fetch(ctx context.Context, ref reference.Named, r Resolved, auth *imagetypes.AuthConfig, platform platforms.MatchComparer, out ProgressFunc) error {
	ctx = s.nsctx(ctx)
	fetcher, err := s.resolver(auth).Fetcher(ctx, r.Name)
	if err != nil {
		return pullError(ref, err)
	}
	cs := s.client.ContentStore()
	pt := newPullTracker(cs, out)
	stop := pt.start(ctx)
	defer stop()

	children := images.LimitManifests(images.ChildrenHandler(cs), platform, 1)
	children = images.FilterPlatforms(children, platform)
	h := images.Handlers(
		pt.handler(),
		remotes.FetchHandler(cs, fetcher),
		images.SetChildrenLabels(cs, children),
		pt.doneHandler(),
	)
	if err := images.Dispatch(ctx, h, nil, r.Desc); err != nil {
		return pullError(ref, err)
	}
	return nil
}

func isLayer(mt string) bool {
	return images.IsLayerType(mt)
}

// pullTracker turns content-store ingest status into per-layer progress.
type pullTracker struct {
	cs  content.Store
	out ProgressFunc

	mu     sync.Mutex
	layers map[string]ocispec.Descriptor // ref key -> desc, while downloading
}

func newPullTracker(cs content.Store, out ProgressFunc) *pullTracker {
	return &pullTracker{cs: cs, out: out, layers: map[string]ocispec.Descriptor{}}
}

func (p *pullTracker) emit(m imagetypes.JSONMessage) {
	if p.out != nil {
		p.out(m)
	}
}

func (p *pullTracker) handler() images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if !isLayer(desc.MediaType) {
			return nil, nil
		}
		id := shortID(desc.Digest.String())
		if _, err := p.cs.Info(ctx, desc.Digest); err == nil {
			p.emit(imagetypes.JSONMessage{Status: "Already exists", ID: id})
			return nil, nil
		}
		p.emit(imagetypes.JSONMessage{Status: "Pulling fs layer", ID: id})
		p.mu.Lock()
		p.layers[remotes.MakeRefKey(ctx, desc)] = desc
		p.mu.Unlock()
		return nil, nil
	}
}

func (p *pullTracker) doneHandler() images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if !isLayer(desc.MediaType) {
			return nil, nil
		}
		key := remotes.MakeRefKey(ctx, desc)
		p.mu.Lock()
		_, tracked := p.layers[key]
		delete(p.layers, key)
		p.mu.Unlock()
		if tracked {
			p.emit(imagetypes.JSONMessage{Status: "Download complete", ID: shortID(desc.Digest.String())})
		}
		return nil, nil
	}
}

// start polls ingest statuses (what `ctr pull` shows) until stop is called.
func (p *pullTracker) start(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sts, err := p.cs.ListStatuses(ctx)
			if err != nil {
				continue
			}
			p.mu.Lock()
			for _, st := range sts {
				desc, ok := p.layers[st.Ref]
				if !ok {
					continue
				}
				p.emit(imagetypes.JSONMessage{Status: "Downloading", ID: shortID(desc.Digest.String()),
					Progress: &imagetypes.JSONProgress{Current: st.Offset, Total: desc.Size}})
			}
			p.mu.Unlock()
		}
	}()
	return func() { close(done); wg.Wait() }
}
