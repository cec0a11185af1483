package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
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
	dir            string
	dockerfile     []byte
	dockerfileName string
	// sums are the content hashes of the context's regular files by "/"-rooted path, taken while
	// extracting.
	sums map[string]string
}

func (c *buildContext) close() { os.RemoveAll(c.dir) }

// openContext extracts the context into a fresh scratch directory and reads the Dockerfile. Entries
// are resolved inside the directory by containerd's archive package ("..", absolute names and symlinks
// never reach outside it); a truncated or corrupt archive is an invalid argument and leaves nothing.
func (b *Builder) openContext(ctx context.Context, opts buildtypes.Options, body io.Reader) (_ *buildContext, retErr error) {
	if err := os.MkdirAll(b.cfg.TmpRoot, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.cfg.TmpRoot, "build-")
	if err != nil {
		return nil, err
	}
	bc := &buildContext{dir: dir}
	defer func() {
		if retErr != nil {
			bc.close()
		}
	}()
	if opts.Remote != "" {
		if err := b.fetchRemote(ctx, opts.Remote, bc); err != nil {
			return nil, err
		}
	} else if bc.sums, err = extractHashing(ctx, dir, body); err != nil {
		return nil, err
	}
	if err := bc.readDockerfile(opts.Dockerfile); err != nil {
		return nil, err
	}
	return bc, nil
}

// extractContext untars r (compressed or not) into dir.
func extractContext(ctx context.Context, dir string, r io.Reader) error {
	_, err := extractHashing(ctx, dir, r)
	return err
}

// extractHashing untars r into dir and, on a second core, hashes the contents of its regular files as
// they stream by: COPY's cache keys then need no second read of the context. The map is keyed by the
// entry's cleaned path relative to dir; an entry written twice keeps the last content's hash.
func extractHashing(ctx context.Context, dir string, r io.Reader) (map[string]string, error) {
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("failed to read the build context: " + err.Error())
	}
	defer ds.Close()
	pr, pw := io.Pipe()
	hashes := make(chan map[string]string, 1)
	go func() {
		hashes <- hashTar(pr)
		io.Copy(io.Discard, pr)
	}()
	// Whiteout names are ordinary files in a build context.
	_, err = archive.Apply(ctx, dir, io.TeeReader(ds, pw), archive.WithConvertWhiteout(func(*tar.Header, string) (bool, error) { return true, nil }))
	pw.Close()
	sums := <-hashes
	if err == nil {
		return sums, nil
	}
	return nil, classifyExtract(ctx, err)
}

func hashTar(r io.Reader) map[string]string {
	sums := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			return sums
		}
		name := filepath.Clean("/" + h.Name)
		if h.Typeflag != tar.TypeReg {
			delete(sums, name)
			continue
		}
		d := sha256.New()
		if _, err := io.Copy(d, tr); err != nil {
			return sums
		}
		sums[name] = hex.EncodeToString(d.Sum(nil))
	}
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
// the context when .dockerignore excludes them.
func (c *buildContext) readDockerfile(name string) error {
	if name == "" {
		name = "Dockerfile"
	}
	p, err := securejoin.SecureJoin(c.dir, name)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) && name == "Dockerfile" {
		if lp, lerr := securejoin.SecureJoin(c.dir, "dockerfile"); lerr == nil {
			if d, lerr := os.ReadFile(lp); lerr == nil {
				data, err, name, p = d, nil, "dockerfile", lp
			}
		}
	}
	if err != nil {
		if os.IsNotExist(err) {
			return errors.Errorf("Cannot locate specified Dockerfile: %s", name)
		}
		return errors.Wrapf(err, "read %s", name)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("the Dockerfile (" + name + ") cannot be empty")
	}
	c.dockerfile, c.dockerfileName = data, name
	ig := filepath.Join(c.dir, ".dockerignore")
	f, err := os.Open(ig)
	if err != nil {
		return nil
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("failed to parse .dockerignore: " + err.Error())
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("failed to parse .dockerignore: " + err.Error())
	}
	for _, f := range []string{name, ".dockerignore"} {
		if ok, _ := pm.MatchesOrParentMatches(filepath.Clean(f)); ok {
			if fp, err := securejoin.SecureJoin(c.dir, f); err == nil {
				os.Remove(fp)
			}
		}
	}
	return nil
}
