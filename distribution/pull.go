package distribution

import (
	"context"
	"sync"
	"time"

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

// pullError turns a registry client's error into what dockerd answers a pull with, by class: a missing
// tag or manifest is NotFound "manifest for ... not found"; refused credentials are NotFound "pull access
// denied ..." (dockerd's wording, which makes the CLI suggest `docker login`); an unreachable registry
// is Unavailable.
func pullError(ref reference.Named, err error) error {
	err = classify(err)
	var re *RegistryError
	switch {
	case errdefs.IsCanceled(err) || errors.Is(err, context.Canceled):
		return err
	case isAuthError(err) || errors.As(err, &re) && re.HasCode("DENIED"):
		return errdefs.ErrNotFound.WithMessage("pull access denied for " + reference.FamiliarName(ref) + ", repository does not exist or may require 'docker login': " + err.Error())
	case errdefs.IsNotFound(err):
		return errdefs.ErrNotFound.WithMessage("manifest for " + familiar(ref) + " not found: manifest unknown: manifest unknown")
	case errdefs.IsUnavailable(err):
		return err
	}
	return errors.Wrapf(err, "pull %s", familiar(ref))
}

// LayerIngest, given to Fetch, is called once the platform's manifest and its config are stored and
// before any of its layers is fetched; layer blobs are then written through the ingester it returns (to
// unpack them on the way, say), and done is called when the last one is. It may return a nil ingester to
// have layers written to the content store as they are.
type LayerIngest func(ctx context.Context, manifest ocispec.Descriptor) (ing content.Ingester, done func(), err error)

// MaxConcurrentDownloads is how many layers are fetched at once, as dockerd's default.
const MaxConcurrentDownloads = 3

// Fetch downloads what r points at (an index is narrowed to platform) into the content store, with the
// labels that keep a manifest's children alive, reporting per-layer progress as dockerd does ("Pulling fs
// layer", "Downloading", "Download complete", "Already exists"). Layers are fetched after the manifest
// and config, bottom first, at most MaxConcurrentDownloads at a time (each starts only once those below
// it have started), through layers' ingester when it is given. ctx must carry a lease.
func (s *Service) Fetch(ctx context.Context, ref reference.Named, r Resolved, auth *imagetypes.AuthConfig, platform platforms.MatchComparer, out ProgressFunc, layers LayerIngest) error {
	ctx = s.nsctx(ctx)
	fetcher, err := s.resolver(auth).Fetcher(ctx, r.Name)
	if err != nil {
		return pullError(ref, err)
	}
	cs := s.client.ContentStore()
	pt := newPullTracker(cs, out)
	stop := pt.start(ctx)
	defer stop()

	// First the index, manifest and config; the layers are set aside (after the manifest is labelled
	// with them) to be fetched in order below.
	var (
		mu       sync.Mutex
		manifest ocispec.Descriptor
		pending  []ocispec.Descriptor
	)
	children := images.LimitManifests(images.ChildrenHandler(cs), platform, 1)
	children = images.FilterPlatforms(children, platform)
	labelled := images.SetChildrenLabels(cs, children)
	setAside := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		subs, err := labelled.Handle(ctx, desc)
		if err != nil {
			return nil, err
		}
		var keep, ls []ocispec.Descriptor
		for _, d := range subs {
			if isLayer(d.MediaType) {
				ls = append(ls, d)
			} else {
				keep = append(keep, d)
			}
		}
		if len(ls) > 0 {
			mu.Lock()
			manifest, pending = desc, ls
			mu.Unlock()
		}
		return keep, nil
	})
	remember := s.sourceRecorder(ctx, ref)
	h := images.Handlers(remotes.FetchHandler(cs, fetcher), remember, setAside)
	if err := images.Dispatch(ctx, h, nil, r.Desc); err != nil {
		return pullError(ref, err)
	}
	if len(pending) == 0 {
		return nil
	}

	var ing content.Ingester = cs
	if layers != nil {
		li, done, err := layers(ctx, manifest)
		if err != nil {
			return err
		}
		if done != nil {
			defer done()
		}
		if li != nil {
			ing = li
		}
	}
	// Every layer is announced at once, as dockerd does, though only some download at a time.
	announce := pt.handler()
	for _, l := range pending {
		if _, err := announce(ctx, l); err != nil {
			return pullError(ref, err)
		}
	}
	lh := images.Handlers(remotes.FetchHandler(ing, fetcher), remember, pt.doneHandler())
	if err := fetchInOrder(ctx, lh, pending, s.registries().MaxConcurrentDownloads); err != nil {
		return pullError(ref, err)
	}
	return nil
}

// sourceRecorder remembers that fetched blobs exist in ref's repository, so that a later push to another
// repository of the same registry mounts them (see push). It never fails a pull: a blob not (yet) in the
// content store, say one an unpacking ingester still holds, is skipped.
func (s *Service) sourceRecorder(ctx context.Context, ref reference.Named) images.HandlerFunc {
	add, err := docker.AppendDistributionSourceLabel(s.client.ContentStore(), ref.String())
	if err != nil {
		return func(context.Context, ocispec.Descriptor) ([]ocispec.Descriptor, error) { return nil, nil }
	}
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if _, err := add(ctx, desc); err != nil {
			log.G(ctx).WithError(err).WithField("digest", desc.Digest).Debug("pull: cannot record distribution source")
		}
		return nil, nil
	}
}

// fetchInOrder runs h on each distinct layer, bottom first, at most MaxConcurrentDownloads at a time: a
// layer's slot is taken only after every layer below it has its own, so a layer that waits for the one
// below it (to unpack on top of it) always waits for something under way.
func fetchInOrder(ctx context.Context, h images.Handler, layers []ocispec.Descriptor, limit int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if limit <= 0 {
		limit = MaxConcurrentDownloads
	}
	slots := make(chan struct{}, limit)
	errc := make(chan error, len(layers))
	seen := map[string]bool{}
	started := 0
loop:
	for _, l := range layers {
		if seen[l.Digest.String()] {
			continue
		}
		seen[l.Digest.String()] = true
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		if ctx.Err() != nil {
			// A failed layer freed the slot: do not start another.
			<-slots
			break loop
		}
		started++
		go func(l ocispec.Descriptor) {
			defer func() { <-slots }()
			_, err := h.Handle(ctx, l)
			if err != nil {
				cancel()
			}
			errc <- err
		}(l)
	}
	var first error
	for i := 0; i < started; i++ {
		if err := <-errc; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	return first
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
