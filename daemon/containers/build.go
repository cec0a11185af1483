package containers

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/layer"
	"github.com/containerd/continuity/fs"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// BuildOps are the primitives the classic builder (image/builder) runs its steps with: an intermediate
// container is created, run or written into, committed and removed through the same service as any other
// container, so events, names and clean-up are those of ordinary containers.
type BuildOps struct {
	fs   *filesystem
	life buildLifecycle
}

// buildLifecycle is what the builder needs of lifecycle: an intermediate container's life.
type buildLifecycle interface {
	Create(ctx context.Context, name string, req *ctypes.CreateRequest) (CreateResult, error)
	Start(ctx context.Context, ref string) error
	Kill(ctx context.Context, ref, signal string) error
	Remove(ctx context.Context, ref string, force, removeVolumes bool) error
}

// NewBuildOps returns the builder's primitives over s's filesystem and lifecycle parts.
func NewBuildOps(s *Service) BuildOps { return BuildOps{fs: s.fs, life: s.life} }

// Create creates an intermediate container from an image ID with the builder's config.
func (b BuildOps) Create(ctx context.Context, cfg *ctypes.Config, hc *ctypes.HostConfig) (string, []string, error) {
	r, err := b.life.Create(ctx, "", &ctypes.CreateRequest{Config: *cfg, HostConfig: hc})
	if err != nil {
		return "", nil, err
	}
	return r.ID, r.Warnings, nil
}

// Run starts the container and copies its output to stdout and stderr until it exits and its output is
// drained; it returns the exit code. When ctx ends first the container is killed and ctx's error returned.
func (b BuildOps) Run(ctx context.Context, id string, stdout, stderr io.Writer) (int, error) {
	c, err := b.fs.get(id)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.streams == nil {
		c.streams = newStreams(c.Config.OpenStdin)
	}
	st := c.streams
	c.mu.Unlock()
	k := st.addSink(stdout, stderr)
	defer st.removeSink(k)
	exited := c.State.Wait(ctx, "next-exit")
	if err := b.life.Start(ctx, id); err != nil {
		return 0, err
	}
	select {
	case es := <-exited:
		select {
		case <-k.done:
		case <-ctx.Done():
		}
		return es.ExitCode, nil
	case <-ctx.Done():
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = b.life.Kill(kctx, id, "KILL")
		select {
		case <-c.State.Wait(kctx, "not-running"):
		case <-kctx.Done():
		}
		return 0, ctx.Err()
	}
}

// Remove removes the container with its anonymous volumes, as dockerd's builder does.
func (b BuildOps) Remove(ctx context.Context, id string) error {
	return b.life.Remove(ctx, id, true, true)
}

// Mkdir creates dir (and its missing parents, owned by uid:gid, mode 0755) in the container's layer;
// symlinks on the way resolve inside the container's root.
func (b BuildOps) Mkdir(ctx context.Context, id, dir string, uid, gid int) error {
	c, err := b.fs.get(id)
	if err != nil {
		return err
	}
	return b.fs.withCopyRoot(ctx, c, copyWrite, func(root *os.File) error {
		return mkdirAllIn(fdPath(root), dir, uid, gid)
	})
}

func mkdirAllIn(root, dir string, uid, gid int) error {
	p, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(p); err == nil {
		if !fi.IsDir() {
			return errdefs.ErrInvalidArgument.WithMessage("mkdir " + dir + ": not a directory")
		}
		return nil
	}
	if parent := path.Dir(path.Clean("/" + dir)); parent != "/" {
		if err := mkdirAllIn(root, parent, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return os.Lchown(p, uid, gid)
}

// CopyIn extracts the tar r at dir in the container (dir is created first, see Mkdir). With chown set
// ("user[:group]", names resolved in the container) every entry is owned by that user.
func (b BuildOps) CopyIn(ctx context.Context, id, dir, chown string, r io.Reader) error {
	c, err := b.fs.get(id)
	if err != nil {
		return err
	}
	uid, gid := 0, 0
	if chown != "" {
		u, err := b.fs.resolveUser(ctx, c, chown, nil)
		if err != nil {
			return err
		}
		uid, gid = int(u.UID), int(u.GID)
		if _, _, hasGroup := strings.Cut(chown, ":"); !hasGroup {
			gid = uid
			if u.GID != 0 {
				gid = int(u.GID)
			}
		}
		pr, pw := io.Pipe()
		go func(src io.Reader) { pw.CloseWithError(rechown(src, pw, uid, gid)) }(r)
		defer pr.Close()
		r = pr
	}
	return b.fs.withCopyRoot(ctx, c, copyWrite, func(rootf *os.File) error {
		root := fdPath(rootf)
		if err := mkdirAllIn(root, dir, uid, gid); err != nil {
			return err
		}
		dst, err := securejoin.SecureJoin(root, dir)
		if err != nil {
			return err
		}
		// A ".wh." name is an ordinary file here, as in docker cp: COPY copies files, it applies no layer.
		return errors.Wrap(layer.ExtractFiles(ctx, dst, r), "copy into the build container")
	})
}

func rechown(r io.Reader, w io.Writer, uid, gid int) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		h.Uid, h.Gid, h.Uname, h.Gname = uid, gid, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// BuildCommit is one builder step's commit: the image config and the config of the container that made
// it, the history line, and the parent ("" for a stage from scratch, whose base image is only a vehicle).
type BuildCommit struct {
	Config          *imagetypes.ContainerConfig
	ContainerConfig *imagetypes.ContainerConfig
	CreatedBy       string
	Parent          string
	Author          string
	Platform        ocispec.Platform
}

// Commit writes the container's changes as a layer on its image (no layer, and an empty_layer history
// entry, when nothing changed) and stores the image as dangling; it returns the image ID.
func (b BuildOps) Commit(ctx context.Context, id string, opts BuildCommit) (string, error) {
	s := b.fs
	if s.imageStore == nil {
		return "", errdefs.ErrNotImplemented.WithMessage("commit is not available")
	}
	c, err := s.get(id)
	if err != nil {
		return "", err
	}
	base, err := s.imageStore.Get(ctx, c.ImageID)
	if err != nil {
		return "", err
	}
	skip := notChanges(c)
	changed := false
	if err := s.layers.Changes(ctx, c.ID, func(k fs.ChangeKind, p string, fi os.FileInfo, _ error) error {
		// The runtime's mount points (/etc/hosts...) leave their directory modified; dockerd keeps them
		// in an init layer, so that alone is no change of the step's.
		if !skip(p) && !(k == fs.ChangeKindModify && fi != nil && fi.IsDir() && holdsMountPoint(c, p)) {
			changed = true
		}
		return nil
	}); err != nil {
		return "", err
	}
	lctx, done, err := s.imageStore.WithLease(ctx)
	if err != nil {
		return "", err
	}
	defer done(context.WithoutCancel(ctx))
	now := time.Now().UTC()
	cfg := *base.Config
	cfg.Created, cfg.Config, cfg.ContainerConfig, cfg.Container = &now, opts.Config, opts.ContainerConfig, c.ID
	cfg.Author, cfg.Comment, cfg.Parent = opts.Author, "", opts.Parent
	cfg.DockerVersion = base.Config.DockerVersion
	if opts.Platform.Architecture != "" {
		cfg.OS, cfg.Architecture, cfg.Variant = opts.Platform.OS, opts.Platform.Architecture, opts.Platform.Variant
	}
	cfg.RootFS.Type = "layers"
	layers := append([]ocispec.Descriptor(nil), base.Layers...)
	cfg.RootFS.DiffIDs = append([]digest.Digest(nil), base.Config.RootFS.DiffIDs...)
	if changed {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(s.layers.WriteDiff(ctx, c.ID, pw, skip)) }()
		desc, err := s.imageStore.WriteLayer(lctx, pr)
		pr.Close()
		if err != nil {
			return "", err
		}
		layers = append(layers, desc)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, desc.Digest)
	}
	cfg.History = append(append([]image.History(nil), base.Config.History...), image.History{Created: &now, Author: opts.Author, CreatedBy: opts.CreatedBy, EmptyLayer: !changed})
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	manifest, err := s.imageStore.WriteImage(lctx, raw, layers)
	if err != nil {
		return "", err
	}
	if err := s.imageStore.AddDangling(lctx, manifest); err != nil {
		return "", err
	}
	return digest.FromBytes(raw).String(), nil
}

// IsDir tells whether p is a directory in the container (symlinks resolved inside its root).
func (b BuildOps) IsDir(ctx context.Context, id, p string) (bool, error) {
	c, err := b.fs.get(id)
	if err != nil {
		return false, err
	}
	isDir := false
	err = b.fs.withCopyRoot(ctx, c, copyStat, func(rootf *os.File) error {
		full, err := securejoin.SecureJoin(fdPath(rootf), p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(full)
		isDir = err == nil && fi.IsDir()
		return nil
	})
	return isDir, err
}

// Archive writes p of the container's filesystem as a tar.
func (b BuildOps) Archive(ctx context.Context, id, p string, w io.Writer) error {
	return b.fs.Archive(ctx, id, p, w)
}

// holdsMountPoint tells whether dir directly contains one of the runtime's or the container's mount points.
func holdsMountPoint(c *Container, dir string) bool {
	for p := range initPaths {
		if path.Dir(p) == dir {
			return true
		}
	}
	for p := range c.MountPoints {
		if path.Dir(p) == dir {
			return true
		}
	}
	return false
}
