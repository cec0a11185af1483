package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/moby/sys/userns"
	"github.com/opencontainers/go-digest"
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
