package daemon

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"sync"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/daemon/containers"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/image/builder"
	"github.com/berthd/berthd/image/service"
	"github.com/berthd/berthd/image/store"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// initBuilder wires the classic builder to the containers service (intermediate containers) and the
// image store (base images, cache lookups, tags). It runs after containers.
func (d *Daemon) initBuilder(ctx context.Context) error {
	imgs := &builderImages{svc: d.imgs.images, st: d.imgs.images.Store()}
	d.builder = builder.New(builder.Config{TmpRoot: filepath.Join(d.cfg.Root, "tmp")}, builderContainers{containers.NewBuildOps(d.ctrs.svc)}, imgs)
	return nil
}

// BuildBackend is the build router's backend.
func (d *Daemon) BuildBackend() *builder.Builder { return d.builder }

// builderContainers adapts the containers service's build primitives to builder.Containers.
type builderContainers struct{ containers.BuildOps }

func (c builderContainers) Commit(ctx context.Context, id string, o builder.Commit) (string, error) {
	return c.BuildOps.Commit(ctx, id, containers.BuildCommit{Config: o.Config, ContainerConfig: o.ContainerConfig, CreatedBy: o.CreatedBy, Parent: o.Parent, Author: o.Author, Platform: o.Platform})
}

// builderImages adapts the image service and store to builder.Images.
type builderImages struct {
	svc *service.Service
	st  *store.Store

	mu       sync.Mutex
	scratchN int
}

func (i *builderImages) Get(ctx context.Context, ref string) (*builder.Image, error) {
	img, err := i.st.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &builder.Image{ID: img.ID.String(), Config: img.Config}, nil
}

func (i *builderImages) List(ctx context.Context) ([]*builder.Image, error) {
	imgs, err := i.st.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*builder.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, &builder.Image{ID: img.ID.String(), Config: img.Config})
	}
	return out, nil
}

func (i *builderImages) Tag(ctx context.Context, id, ref string) error {
	n, err := image.ParseTagged(ref)
	if err != nil {
		return err
	}
	t, ok := n.(reference.Tagged)
	if !ok {
		return errdefs.ErrInvalidArgument.WithMessage("build tag cannot contain a digest")
	}
	return i.svc.TagImage(ctx, id, n.Name(), t.Tag())
}

// Pull pulls the one image ref names (":latest" added); an empty tag would mean every tag to PullImage.
func (i *builderImages) Pull(ctx context.Context, ref string, progress func(imagetypes.JSONMessage)) error {
	n, err := image.ParseTagged(ref)
	if err != nil {
		return err
	}
	switch r := n.(type) {
	case reference.Tagged:
		return i.svc.PullImage(ctx, n.Name(), r.Tag(), "", nil, progress)
	case reference.Digested:
		return i.svc.PullImage(ctx, n.Name(), r.Digest().String(), "", nil, progress)
	}
	return errdefs.ErrInvalidArgument.WithMessage("invalid reference format: " + ref)
}

// scratchConfig is the layerless image intermediate containers of a stage FROM scratch are created from.
func scratchConfig() []byte {
	b, _ := json.Marshal(image.Config{Architecture: runtime.GOARCH, OS: "linux", RootFS: image.RootFS{Type: "layers"}, Config: &imagetypes.ContainerConfig{}})
	return b
}

func (i *builderImages) Scratch(ctx context.Context) (string, func(context.Context), error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	lctx, done, err := i.st.WithLease(ctx)
	if err != nil {
		return "", nil, err
	}
	defer done(context.WithoutCancel(ctx))
	m, err := i.st.WriteImage(lctx, scratchConfig(), nil)
	if err != nil {
		return "", nil, err
	}
	if err := i.st.AddDangling(lctx, m); err != nil {
		return "", nil, err
	}
	id, err := i.st.ConfigDigest(ctx, m)
	if err != nil {
		return "", nil, err
	}
	i.scratchN++
	release := func(ctx context.Context) {
		i.mu.Lock()
		defer i.mu.Unlock()
		i.scratchN--
		if i.scratchN > 0 {
			return
		}
		if img, err := i.st.Get(ctx, id.String()); err == nil {
			_ = i.st.Delete(ctx, img, false)
		}
	}
	return id.String(), release, nil
}
