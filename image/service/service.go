// Package service is the image router's backend: import, load, save, list, inspect, history, tag, delete,
// prune, pull and push, with dockerd's rules and messages, over image/store (containerd's image, content and
// snapshot stores) and distribution (registries). It also answers what other services ask of images: the
// run config a container starts from, counts for /info, rows for /system/df.
//
// It must not import containerd (only image/store, distribution and layer do), daemon or api/server.
package service

import (
	"context"
	"sync"

	eventtypes "github.com/berthd/berthd/api/types/events"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/distribution"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/image/store"
	"github.com/containerd/errdefs"
	"github.com/moby/locker"
	"github.com/opencontainers/go-digest"
)

// EventLogger receives image events (daemon/events.Events implements it).
type EventLogger interface {
	Log(action string, typ eventtypes.Type, actor eventtypes.Actor)
}

// ContainerUsage tells which containers use an image; the container service implements it. running and
// stopped are container IDs. Until one is set, no image is considered in use.
type ContainerUsage interface {
	ImageUsage(ctx context.Context, id digest.Digest) (running, stopped []string)
}

// Config configures the service.
type Config struct {
	// DockerVersion is written into the config of imported images (docker_version).
	DockerVersion string
}

// Service implements the image backend.
type Service struct {
	cfg    Config
	store  *store.Store
	dist   *distribution.Service
	events EventLogger

	mu    sync.RWMutex
	usage ContainerUsage

	// pulls serializes pulls of one reference: a second pull then finds the content in place instead of
	// contending for the same ingests.
	pulls *locker.Locker
}

// New returns the service. events may be nil (no events are sent).
func New(ctx context.Context, cfg Config, st *store.Store, dist *distribution.Service, events EventLogger) (*Service, error) {
	if st == nil || dist == nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("image service: store and distribution are required")
	}
	return &Service{cfg: cfg, store: st, dist: dist, events: events, pulls: locker.New()}, nil
}

// SetContainerUsage installs the "is this image used by a container" hook (called once the container
// service exists).
func (s *Service) SetContainerUsage(u ContainerUsage) {
	s.mu.Lock()
	s.usage = u
	s.mu.Unlock()
}

func (s *Service) usedBy(ctx context.Context, id digest.Digest) (running, stopped []string) {
	s.mu.RLock()
	u := s.usage
	s.mu.RUnlock()
	if u == nil {
		return nil, nil
	}
	return u.ImageUsage(ctx, id)
}

// Store is the image store (for the daemon's wiring of other services).
func (s *Service) Store() *store.Store { return s.store }

func (s *Service) logEvent(action, id, name string, img *store.Image) {
	if s.events == nil {
		return
	}
	attrs := map[string]string{}
	if img != nil {
		for k, v := range img.Config.Labels() {
			attrs[k] = v
		}
	}
	if name != "" {
		attrs["name"] = name
	}
	s.events.Log(action, eventtypes.ImageEventType, eventtypes.Actor{ID: id, Attributes: attrs})
}

// RunConfig is what a container is created from: the image's defaults and the snapshot its RW layer sits
// on. The image is unpacked first if its layers are not (e.g. after the snapshotter changed). A missing
// image is NotFound "No such image: <ref>", which makes the CLI pull and retry.
func (s *Service) RunConfig(ctx context.Context, ref string) (*image.RunConfig, error) {
	img, err := s.store.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !s.store.IsUnpacked(ctx, img) {
		lctx, done, err := s.store.WithLease(ctx)
		if err != nil {
			return nil, err
		}
		defer done(context.WithoutCancel(ctx))
		if err := s.store.Unpack(lctx, img.Manifest, nil); err != nil {
			return nil, err
		}
	}
	return image.RunConfigOf(img.ID, img.Config, s.store.Snapshotter()), nil
}

// CountImages is /info's Images.
func (s *Service) CountImages(ctx context.Context) int {
	imgs, err := s.store.List(ctx)
	if err != nil {
		return 0
	}
	return len(imgs)
}

// AuthenticateToRegistry is POST /auth: check credentials against the registry they name.
func (s *Service) AuthenticateToRegistry(ctx context.Context, auth *imagetypes.AuthConfig) (*imagetypes.AuthResponse, error) {
	if auth == nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no credentials given")
	}
	status, err := s.dist.Login(ctx, auth)
	if err != nil {
		return nil, err
	}
	return &imagetypes.AuthResponse{Status: status}, nil
}
