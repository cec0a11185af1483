package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/userns"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// A layer is unpacked in berthd's own process, straight from the bytes being ingested, instead of through
// containerd's diff service after the blob is stored: the diff service would read the blob back and
// digest it a second time (containerd's sha256 is several times slower than ours), and it cannot start
// before the blob is complete. The snapshot is committed under the chain ID of what was actually
// extracted, so whatever the image turns out to be, a snapshot never holds anything but its name says.

// extractKey names an active extraction snapshot as containerd's unpacker does, so snapshotters and
// garbage collection treat it the same.
func extractKey(what string) string {
	return fmt.Sprintf(snapshots.UnpackKeyFormat, randomID(), what)
}

// looksLikeTar reports whether the start of a (decompressed) stream is a tar header block; an empty
// archive (end-of-archive blocks only) counts.
func looksLikeTar(br *bufio.Reader) bool {
	head, _ := br.Peek(1024)
	if len(head) < 512 {
		return false
	}
	_, err := tar.NewReader(bytes.NewReader(head)).Next()
	return err == nil || err == io.EOF || err == io.ErrUnexpectedEOF
}

// applyTar extracts the tar stream r into mounts (an active snapshot). For a single overlay mount the
// tar goes into the upper directory directly, with whiteouts converted, as containerd's applier does
// (no mount, no copy-up); a single writable bind mount is written in place; anything else is mounted.
func applyTar(ctx context.Context, mounts []mount.Mount, r io.Reader) error {
	if len(mounts) == 1 && !userns.RunningInUserNS() {
		m := mounts[0]
		switch m.Type {
		case "overlay":
			if upper, lower := overlayDirs(m.Options); upper != "" {
				opts := []archive.ApplyOpt{archive.WithConvertWhiteout(archive.OverlayConvertWhiteout)}
				if len(lower) > 0 {
					opts = append(opts, archive.WithParents(lower))
				}
				_, err := archive.Apply(ctx, upper, r, opts...)
				return err
			}
		case "bind", "rbind":
			if m.Source != "" && !hasOption(m.Options, "ro") {
				_, err := archive.Apply(ctx, m.Source, r)
				return err
			}
		}
	}
	return mount.WithTempMount(ctx, mounts, func(root string) error {
		_, err := archive.Apply(ctx, root, r)
		return err
	})
}

func overlayDirs(options []string) (upper string, lower []string) {
	for _, o := range options {
		if v, ok := strings.CutPrefix(o, "upperdir="); ok {
			upper = v
		} else if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lower = strings.Split(v, ":")
		}
	}
	return upper, lower
}

func hasOption(options []string, want string) bool {
	for _, o := range options {
		if o == want {
			return true
		}
	}
	return false
}

// digestFromRef guesses a blob's digest from its archive entry name ("blobs/sha256/<hex>" in OCI layouts,
// "<hex>/layer.tar" in docker save archives, where hex is often the diff ID). It is only a hint.
func digestFromRef(name string) digest.Digest {
	var hex string
	if h, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
		hex = h
	} else if h, ok := strings.CutSuffix(name, "/layer.tar"); ok {
		hex = h
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex)
	if d.Validate() != nil {
		return ""
	}
	return d
}

// applyLayer extracts the stored blob l into a new snapshot on chain and commits it under the chain ID
// with diffID, which the extracted tar must have. It reads the blob over gRPC rather than asking
// containerd's diff service to apply it: the service digests the tar again with containerd's much slower
// sha256, while an uncompressed blob is known by the digest containerd verified when it was stored.
// AlreadyExists means another unpack committed the same snapshot first.
func (s *Store) applyLayer(ctx context.Context, l ocispec.Descriptor, chain []digest.Digest, diffID digest.Digest) error {
	sn := s.sn()
	parent := ""
	if len(chain) > 0 {
		parent = identity.ChainID(chain).String()
	}
	chainID := identity.ChainID(append(append([]digest.Digest(nil), chain...), diffID)).String()
	key := extractKey(chainID)
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		return errors.Wrap(err, "prepare snapshot")
	}
	committed := false
	defer func() {
		if !committed {
			s.removeSnapshot(ctx, key)
		}
	}()
	ra, err := readAheadProvider{s.client.ContentStore()}.ReaderAt(ctx, l)
	if err != nil {
		return err
	}
	defer ra.Close()
	ds, err := compression.DecompressStream(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	defer ds.Close()
	var src io.Reader = ds
	var h hash.Hash
	if ds.GetCompression() != compression.Uncompressed {
		h = sha256.New()
		src = io.TeeReader(ds, h)
	}
	if err := applyTar(ctx, mounts, src); err != nil {
		return errors.Wrap(err, "extract")
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return errors.Wrap(err, "read layer")
	}
	got := l.Digest
	if h != nil {
		got = digest.NewDigest(digest.SHA256, h)
	}
	if got != diffID {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("wrong diff id calculated on extraction %q, want %q", got, diffID))
	}
	if err := sn.Commit(ctx, chainID, key); err != nil {
		return err
	}
	committed = true
	return nil
}
