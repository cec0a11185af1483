package store

import (
	"archive/tar"
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/log"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// Archives usually hold their layers out of order: `docker save` and OCI exporters sort blobs by name, so
// which layer sits on which is only known from the manifest at the end. Rather than extract every such
// layer after the whole archive has streamed in (a second, serial pass), a layer of unknown position is
// extracted at once into a snapshot of its own with no parent, and moved under its real parent once the
// manifest tells where it goes.
//
// On overlayfs a layer's directory holds only its own tar (whiteouts as overlay's character devices,
// opaque directories as an xattr) and so does not depend on the layers below, with two exceptions, which
// keep a speculative extraction from being used: directories the tar does not list but needs (created with
// the attributes of the layer below when extracted in place), and whiteouts in what turns out to be the
// bottom layer (there they must not become devices). A hard link to a file of a lower layer fails the
// extraction. Those layers are extracted in place by Unpack, as before; so is everything on another
// snapshotter.

// specLayer is a layer extracted ahead, in the active snapshot key with no parent.
type specLayer struct {
	key    string
	dir    string        // the snapshot's directory, where the layer's files are
	diffID digest.Digest // of the extracted tar
	// bottom: usable as the image's first layer (no whiteouts); onTop: usable on a parent (every
	// directory it needs is in the tar).
	bottom, onTop bool
}

// speculate extracts the layer in br into a new parentless snapshot, checking its paths on the way.
func (c *checkingStore) speculate(ctx context.Context, br *bufio.Reader, compressed bool) (out inspected) {
	if !c.speculative {
		out.problem = pathProblem(br)
		return out
	}
	key := extractKey("berth-ahead")
	mounts, err := c.sn.Prepare(ctx, key, "")
	if err == nil && (len(mounts) != 1 || mounts[0].Type != "bind" || mounts[0].Source == "" || hasOption(mounts[0].Options, "ro")) {
		c.remove(ctx, key)
		err = errors.Errorf("unexpected mounts %v", mounts)
	}
	if err != nil {
		log.G(ctx).WithError(err).Debug("load: cannot prepare a snapshot to extract ahead into; left to Unpack")
		out.problem = pathProblem(br)
		return out
	}
	sp := &specLayer{key: key, dir: mounts[0].Source, bottom: true, onTop: true}
	listed := map[string]bool{".": true}
	note := func(h *tar.Header) (bool, error) {
		// Apply has cleaned the name already.
		if strings.HasPrefix(filepath.Base(h.Name), ".wh.") {
			sp.bottom = false
		}
		if !listed[filepath.Dir(h.Name)] {
			sp.onTop = false
		}
		if h.Typeflag == tar.TypeDir {
			listed[h.Name] = true
		}
		return true, nil
	}
	problem, diffID, err := extractChecked(br, compressed, func(r io.Reader) error {
		_, err := archive.Apply(ctx, sp.dir, r, archive.WithConvertWhiteout(archive.OverlayConvertWhiteout), archive.WithFilter(note))
		return err
	})
	out.problem = problem
	if err != nil || problem != "" {
		if err != nil && problem == "" {
			log.G(ctx).WithError(err).Debug("load: layer did not extract ahead; left to Unpack")
		}
		c.remove(ctx, key)
		return out
	}
	sp.diffID = diffID
	out.key, out.spec = key, sp
	return out
}

// keepSpec records what speculate extracted once its blob is stored as dgst, or drops it.
func (c *checkingStore) keepSpec(ctx context.Context, r inspected, ok bool, dgst digest.Digest) {
	c.mu.Lock()
	if ok && c.specs[dgst] == nil {
		if r.spec.diffID == "" {
			r.spec.diffID = dgst
		}
		if c.specs == nil {
			c.specs = map[digest.Digest]*specLayer{}
		}
		c.specs[dgst] = r.spec
		c.anySpec = true
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.remove(ctx, r.key)
}

// hadSpecs reports whether anything was extracted ahead in this import (placed or not).
func (c *checkingStore) hadSpecs() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.anySpec
}

func (c *checkingStore) takeSpec(d digest.Digest) *specLayer {
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := c.specs[d]
	delete(c.specs, d)
	return sp
}

// place moves the layers extracted ahead under their parents, bottom first; a layer that was not
// extracted ahead, or cannot be used, is extracted in place by apply so that the ones above it can still
// be placed. It stops at the first failure: Unpack then does the rest and reports it.
func (c *checkingStore) place(ctx context.Context, layers []ocispec.Descriptor, diffIDs []digest.Digest,
	apply func(l ocispec.Descriptor, chain []digest.Digest, diffID digest.Digest) error) {
	if len(layers) != len(diffIDs) {
		return
	}
	var chain []digest.Digest
	for i, l := range layers {
		next := append(append([]digest.Digest(nil), chain...), diffIDs[i])
		chainID := identity.ChainID(next).String()
		if _, err := c.sn.Stat(ctx, chainID); err == nil {
			chain = next
			continue
		}
		sp := c.takeSpec(l.Digest)
		if sp != nil && !(sp.diffID == diffIDs[i] && ((len(chain) == 0 && sp.bottom) || (len(chain) > 0 && sp.onTop))) {
			c.remove(ctx, sp.key)
			sp = nil
		}
		var err error
		if sp != nil {
			if err = c.move(ctx, sp, chain, chainID); err != nil {
				c.remove(ctx, sp.key)
			}
		} else if c.hadSpecs() {
			err = apply(l, chain, diffIDs[i])
			if isAlreadyExists(err) {
				err = nil
			}
		} else {
			return // nothing was extracted ahead: Unpack does it all, with its progress
		}
		if err != nil {
			log.G(ctx).WithError(err).WithField("layer", l.Digest).Debug("load: layer not placed; left to Unpack")
			return
		}
		chain = next
	}
}

// move commits sp's files as the snapshot chainID on top of chain.
func (c *checkingStore) move(ctx context.Context, sp *specLayer, chain []digest.Digest, chainID string) error {
	parent := ""
	if len(chain) > 0 {
		parent = identity.ChainID(chain).String()
	}
	key := extractKey(chainID)
	mounts, err := c.sn.Prepare(ctx, key, parent)
	if err != nil {
		return errors.Wrap(err, "prepare snapshot")
	}
	committed := false
	defer func() {
		if !committed {
			c.remove(ctx, key)
		}
	}()
	target := ""
	if len(mounts) == 1 {
		switch m := mounts[0]; m.Type {
		case "bind":
			if !hasOption(m.Options, "ro") {
				target = m.Source
			}
		case "overlay":
			target, _ = overlayDirs(m.Options)
		}
	}
	if target == "" {
		return errors.Errorf("no writable directory in mounts %v", mounts)
	}
	entries, err := os.ReadDir(sp.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(sp.dir, e.Name()), filepath.Join(target, e.Name())); err != nil {
			return err
		}
	}
	err = c.sn.Commit(ctx, chainID, key)
	switch {
	case err == nil:
		committed = true
	case isAlreadyExists(err):
		// Another unpack committed the same layer first; this copy goes.
	default:
		return errors.Wrap(err, "commit snapshot")
	}
	c.remove(ctx, sp.key)
	return nil
}

// dropSpecs removes what was extracted ahead and not placed.
func (c *checkingStore) dropSpecs(ctx context.Context) {
	c.mu.Lock()
	specs := c.specs
	c.specs = nil
	c.mu.Unlock()
	for _, sp := range specs {
		c.remove(ctx, sp.key)
	}
}
