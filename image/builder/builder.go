// Package builder is berthd's classic Dockerfile builder (POST /build without version=2): the Dockerfile is
// parsed by buildkit's dockerfile parser and instructions packages, words are expanded by its shell lexer,
// and every instruction runs as dockerd's classic builder runs it: an intermediate container is created
// from the current image, run (RUN) or written into (COPY, ADD, WORKDIR) or left alone (metadata), then
// committed as the next image. Containers and images are reached only through the small Containers and
// Images interfaces declared here (the daemon adapts the containers service and the image store to them);
// the builder never talks to containerd itself and must not import daemon or api/server.
//
// The cache is dockerd's: an image whose parent is the current image and whose container_config equals
// the step's probe config is reused; COPY/ADD sources enter the probe through a content hash of the
// files (names, modes, owners, contents; never times). The context is spooled and indexed as it arrives
// and extracted only when a step needs its files (spool.go), so an all-cache build writes no file tree.
package builder

import (
	"context"
	"io"
	"time"

	buildtypes "github.com/berthd/berthd/api/types/build"
	ctypes "github.com/berthd/berthd/api/types/container"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Containers is what a step needs of the containers service. Every method may be called concurrently
// for different containers; errors carry containerd/errdefs classes.
type Containers interface {
	// Create creates (does not start) a container from cfg.Image (an image ID).
	Create(ctx context.Context, cfg *ctypes.Config, hc *ctypes.HostConfig) (id string, warnings []string, err error)
	// Run starts the container, streams its output and returns its exit code; ctx ending kills it.
	Run(ctx context.Context, id string, stdout, stderr io.Writer) (int, error)
	// Mkdir creates dir and its missing parents in the container's filesystem, owned by uid:gid.
	Mkdir(ctx context.Context, id, dir string, uid, gid int) error
	// IsDir tells whether p is an existing directory in the container (symlinks resolved inside it).
	IsDir(ctx context.Context, id, p string) (bool, error)
	// CopyIn extracts a tar at dir (created first); chown, when set, owns every entry.
	CopyIn(ctx context.Context, id, dir, chown string, r io.Reader) error
	// Commit commits the container's changes as a new (untagged) image and returns its ID.
	Commit(ctx context.Context, id string, c Commit) (string, error)
	// Archive writes path of the container's filesystem as a tar (as GET /containers/{id}/archive).
	Archive(ctx context.Context, id, path string, w io.Writer) error
	// Remove removes the container and its anonymous volumes.
	Remove(ctx context.Context, id string) error
}

// Commit is what a step's image records besides the container's changes.
type Commit struct {
	Config          *imagetypes.ContainerConfig
	ContainerConfig *imagetypes.ContainerConfig
	CreatedBy       string
	Author          string
	// Parent is the parent image ID ("" at the bottom of a stage from scratch).
	Parent   string
	Platform ocispec.Platform
}

// Image is an image as the builder sees it.
type Image struct {
	ID     string
	Config *image.Config
}

// Images is what the builder needs of the image side.
type Images interface {
	// Get finds an image by reference or ID; NotFound when it is absent.
	Get(ctx context.Context, ref string) (*Image, error)
	// List lists every image; a build reads it once, for its cache lookups.
	List(ctx context.Context) ([]*Image, error)
	// Tag names the image ref (normalized, ":latest" added by the implementation).
	Tag(ctx context.Context, id, ref string) error
	// Scratch returns the ID of an image without layers, the base of intermediate containers of a
	// stage FROM scratch; release drops it once the build no longer needs it.
	Scratch(ctx context.Context) (id string, release func(context.Context), err error)
	// Pull fetches ref from its registry, reporting progress.
	Pull(ctx context.Context, ref string, progress func(imagetypes.JSONMessage)) error
}

// Config configures the builder.
type Config struct {
	// TmpRoot is where contexts are extracted (<data-root>/tmp); each build gets a directory of its
	// own, removed when the build ends.
	TmpRoot string
}

// Builder runs classic builds. It keeps no state between builds beyond its dependencies.
type Builder struct {
	cfg        Config
	containers Containers
	images     Images
}

// New returns a builder.
func New(cfg Config, c Containers, i Images) *Builder {
	return &Builder{cfg: cfg, containers: c, images: i}
}

// Output receives the build's JSON messages in order.
type Output func(imagetypes.JSONMessage)

// Build runs a build of the context tar (any compression) with opts, writing dockerd's classic stream to
// out; it returns the final image ID. An error returned before anything was written to out is a plain
// request error; a failed RUN's error has an ExitCode method.
func (b *Builder) Build(ctx context.Context, opts buildtypes.Options, body io.Reader, out func(imagetypes.JSONMessage)) (string, error) {
	tags, err := normalizeTags(opts.Tags)
	if err != nil {
		return "", err
	}
	opts.Tags = tags
	t0 := time.Now()
	bctx, err := b.openContext(ctx, opts, body)
	if err != nil {
		return "", err
	}
	log.G(ctx).WithField("took", time.Since(t0)).Debug("build context received")
	defer bctx.close()
	run, err := b.prepare(ctx, opts, bctx, out)
	if err != nil {
		return "", err
	}
	id, err := run.build(ctx)
	log.G(ctx).WithField("took", time.Since(t0)).WithField("image", id).Debug("build done")
	return id, err
}

// normalizeTags parses the t parameters as dockerd does: familiar form, ":latest" added, duplicates
// dropped; a digest is refused.
func normalizeTags(in []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, t := range in {
		if t == "" {
			continue
		}
		n, err := image.ParseNamed(t)
		if err != nil {
			return nil, err
		}
		if _, ok := n.(reference.Digested); ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage("build tag cannot contain a digest")
		}
		f := image.Familiar(reference.TagNameOnly(n))
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}
