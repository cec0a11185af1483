package containers

import (
	"context"
	"encoding/json"
	"io"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	imagestore "github.com/berthd/berthd/image/store"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageStore is what `docker commit` needs of image/store: the parent image, a lease, and writing a
// layer, an image and its name.
type ImageStore interface {
	Get(ctx context.Context, ref string) (*imagestore.Image, error)
	WithLease(ctx context.Context) (context.Context, func(context.Context) error, error)
	WriteLayer(ctx context.Context, r io.Reader) (ocispec.Descriptor, error)
	WriteImage(ctx context.Context, config []byte, layers []ocispec.Descriptor) (ocispec.Descriptor, error)
	SetName(ctx context.Context, name string, manifest ocispec.Descriptor) (digest.Digest, error)
	AddDangling(ctx context.Context, manifest ocispec.Descriptor) error
}

// SetImageStore enables `docker commit`.
func (s *Service) SetImageStore(st ImageStore) { s.fs.imageStore = st }

// CommitOptions is POST /commit.
type CommitOptions struct {
	Repo, Tag, Comment, Author string
	Changes                    []string
	Pause                      bool
	Config                     *ctypes.Config
}

// Commit makes a new image from the container's changes on top of its image (POST /commit).
func (s *filesystem) Commit(ctx context.Context, ref string, opts CommitOptions) (string, error) {
	if s.imageStore == nil {
		return "", errdefs.ErrNotImplemented.WithMessage("commit is not available")
	}
	c, err := s.get(ref)
	if err != nil {
		return "", err
	}
	var named string
	if opts.Repo != "" {
		r, err := image.WithTag(opts.Repo, opts.Tag)
		if err != nil {
			return "", err
		}
		named = r.String()
	}
	parent, err := s.imageStore.Get(ctx, c.ImageID)
	if err != nil {
		return "", err
	}
	// The new config: the container's, with --change instructions and the request's config on top.
	var cc imagetypes.ContainerConfig
	b, _ := json.Marshal(c.Config)
	_ = json.Unmarshal(b, &cc)
	if opts.Config != nil {
		b, _ := json.Marshal(opts.Config)
		_ = json.Unmarshal(b, &cc)
	}
	// One at a time: each change is expanded with the environment the ones before it left.
	for _, ch := range opts.Changes {
		if err := image.ApplyChanges(&cc, []string{expandChange(ch, cc.Env)}); err != nil {
			return "", err
		}
	}
	c.mu.Lock()
	task := c.task
	c.mu.Unlock()
	if opts.Pause && task != nil && !c.State.IsPaused() {
		if err := task.Pause(ctx); err == nil {
			defer task.Resume(context.WithoutCancel(ctx))
		}
	}
	lctx, done, err := s.imageStore.WithLease(ctx)
	if err != nil {
		return "", err
	}
	defer done(context.WithoutCancel(ctx))
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.layers.WriteDiff(ctx, c.ID, pw, notChanges(c))) }()
	layerDesc, err := s.imageStore.WriteLayer(lctx, pr)
	pr.Close()
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	cfg := *parent.Config
	cfg.Created, cfg.Config, cfg.Container = &now, &cc, c.ID
	cfg.Comment, cfg.Author = opts.Comment, opts.Author
	cfg.Parent = string(parent.ID)
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = append(append([]digest.Digest(nil), parent.Config.RootFS.DiffIDs...), layerDesc.Digest)
	cfg.History = append(append([]image.History(nil), parent.Config.History...), image.History{Created: &now, Author: opts.Author, CreatedBy: c.command(), Comment: opts.Comment})
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	layers := append(append([]ocispec.Descriptor(nil), parent.Layers...), layerDesc)
	manifest, err := s.imageStore.WriteImage(lctx, raw, layers)
	if err != nil {
		return "", err
	}
	if named != "" {
		if _, err := s.imageStore.SetName(lctx, named, manifest); err != nil {
			return "", err
		}
	} else if err := s.imageStore.AddDangling(lctx, manifest); err != nil {
		return "", err
	}
	id := digest.FromBytes(raw).String()
	s.logEvent(c, "commit", map[string]string{"comment": opts.Comment, "imageID": id, "imageRef": named})
	return id, nil
}
