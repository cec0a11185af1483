package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"

	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/pkg/errors"
)

// buildContext is a build's extracted context: a private directory under TmpRoot, and the Dockerfile
// read from it.
type buildContext struct {
	// scratch is the build's private directory; dir (scratch/ctx) is the context's root.
	scratch        string
	dir            string
	spool          *spooled
	dockerfile     []byte
	dockerfileName string
}

func (c *buildContext) close() {
	if c.spool != nil {
		c.spool.store.release()
	}
	os.RemoveAll(c.scratch)
}

// openContext extracts the context into a fresh scratch directory and reads the Dockerfile. Entries
// are resolved inside the directory by containerd's archive package ("..", absolute names and symlinks
// never reach outside it); a truncated or corrupt archive is an invalid argument and leaves nothing.
func (b *Builder) openContext(ctx context.Context, opts buildtypes.Options, body io.Reader) (_ *buildContext, retErr error) {
	if err := os.MkdirAll(b.cfg.TmpRoot, 0o700); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(b.cfg.TmpRoot, "build-")
	if err != nil {
		return nil, err
	}
	bc := &buildContext{scratch: scratch, dir: filepath.Join(scratch, "ctx")}
	defer func() {
		if retErr != nil {
			bc.close()
		}
	}()
	if err := os.Mkdir(bc.dir, 0o700); err != nil {
		return nil, err
	}
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	if opts.Remote != "" {
		if err := b.fetchRemote(ctx, opts.Remote, bc); err != nil {
			return nil, err
		}
	} else if err := spoolContext(ctx, bc, body, path.Clean("/"+name), "/dockerfile", "/.dockerignore"); err != nil {
		return nil, err
	}
	if err := bc.readDockerfile(ctx, name); err != nil {
		return nil, err
	}
	return bc, nil
}

// extractContext untars r (compressed or not) into dir: remote contexts and COPY --from sources.
func extractContext(ctx context.Context, dir string, r io.Reader) error {
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("failed to read the build context: " + err.Error())
	}
	defer ds.Close()
	// Whiteout names are ordinary files in a build context.
	if _, err := archive.Apply(ctx, dir, ds, archive.WithConvertWhiteout(func(*tar.Header, string) (bool, error) { return true, nil })); err != nil {
		return classifyExtract(ctx, err)
	}
	return nil
}

func classifyExtract(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrInsecurePath) {
		return errdefs.ErrInvalidArgument.WithMessage("failed to read the build context: " + err.Error())
	}
	return errdefs.ErrInvalidArgument.WithMessage("failed to extract the build context: " + err.Error())
}

// readDockerfile reads the Dockerfile (default "Dockerfile", falling back to "dockerfile" as dockerd
// does) and applies the daemon side of .dockerignore: the Dockerfile and .dockerignore are dropped from
// the context when .dockerignore excludes them. A spooled context answers from what it kept in memory;
// anything else (a link on the way) is read from the extracted files.
func (c *buildContext) readDockerfile(ctx context.Context, name string) error {
	data, ign, found, err := c.readKept(name)
	if err != nil {
		return err
	}
	if !found {
		if err := c.extracted(ctx); err != nil {
			return err
		}
		if data, name, err = c.readFromDisk(name); err != nil {
			return err
		}
		ign, _ = os.ReadFile(filepath.Join(c.dir, ".dockerignore"))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("the Dockerfile (" + name + ") cannot be empty")
	}
	c.dockerfile, c.dockerfileName = data, name
	if ign == nil {
		return nil
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(ign))
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("failed to parse .dockerignore: " + err.Error())
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("failed to parse .dockerignore: " + err.Error())
	}
	for _, f := range []string{name, ".dockerignore"} {
		if ok, _ := pm.MatchesOrParentMatches(filepath.Clean(f)); !ok {
			continue
		}
		if c.spool != nil {
			delete(c.spool.entries, path.Clean("/"+f))
			c.spool.removed = append(c.spool.removed, path.Clean(f))
		}
		// The entry itself goes, not what a link would lead to.
		clean := path.Clean("/" + f)
		if parent, err := securejoin.SecureJoin(c.dir, path.Dir(clean)); err == nil {
			os.Remove(filepath.Join(parent, path.Base(clean)))
		}
	}
	return nil
}

// readKept finds the Dockerfile and .dockerignore among the spooled files kept in memory; found is false
// when the index cannot tell (no spool, or the name is not a plain file entry).
func (c *buildContext) readKept(name string) (data, ign []byte, found bool, err error) {
	sp := c.spool
	if sp == nil {
		return nil, nil, false, nil
	}
	key := path.Clean("/" + name)
	data, ok := sp.kept[key]
	if !ok && name == "Dockerfile" {
		if _, exists := sp.entries[key]; !exists {
			data, ok = sp.kept["/dockerfile"]
		}
	}
	if !ok {
		return nil, nil, false, nil
	}
	if e, ok := sp.entries["/.dockerignore"]; ok {
		if ign, ok = sp.kept["/.dockerignore"]; !ok || e.hdr.Typeflag != tar.TypeReg {
			return nil, nil, false, nil
		}
	}
	return data, ign, true, nil
}

func (c *buildContext) readFromDisk(name string) ([]byte, string, error) {
	p, err := securejoin.SecureJoin(c.dir, name)
	if err != nil {
		return nil, name, err
	}
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) && name == "Dockerfile" {
		if lp, lerr := securejoin.SecureJoin(c.dir, "dockerfile"); lerr == nil {
			if d, lerr := os.ReadFile(lp); lerr == nil {
				data, err, name = d, nil, "dockerfile"
			}
		}
	}
	if err != nil {
		if os.IsNotExist(err) {
			return nil, name, errors.Errorf("Cannot locate specified Dockerfile: %s", name)
		}
		return nil, name, errors.Wrapf(err, "read %s", name)
	}
	return data, name, nil
}
