package manager

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	imagetypes "github.com/berthd/berthd/api/types/image"
	types "github.com/berthd/berthd/api/types/plugin"
	"github.com/berthd/berthd/distribution"
)

// Media types of the plugin images Push makes (Docker schema2, as dockerd pushes plugins).
const (
	mediaTypeManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Push uploads a plugin to the registry its name points at (POST /plugins/{name}/push): one gzipped
// layer made from its rootfs, its manifest as the config blob (media type MediaTypePluginConfig, with
// rootfs.diff_ids) and a schema2 manifest, with dockerd's push progress ending in the aux result.
func (m *Manager) Push(ctx context.Context, name string, auth *imagetypes.AuthConfig, progress func(imagetypes.JSONMessage)) error {
	out := progressFunc(progress)
	reg, err := registryOf(m)
	if err != nil {
		return err
	}
	p, err := m.resolve(name)
	if err != nil {
		return err
	}
	ref, err := normalizeName(p.Name())
	if err != nil {
		return err
	}
	stage, err := stageDir(m.cfg.Root, "push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)

	// The layer is read under the plugin's lock, so an upgrade cannot swap the rootfs meanwhile; the
	// upload runs without it.
	m.locks.Lock(p.ID())
	layerPath := filepath.Join(stage, "layer.tar.gz")
	layer, diffID, err := writeLayer(p.Rootfs(), layerPath)
	cfg := p.Config()
	m.locks.Unlock(p.ID())
	if err != nil {
		return errors.Wrap(err, "packing the plugin's rootfs")
	}

	cfg.Rootfs = &types.Rootfs{Type: "layers", DiffIds: []string{diffID.String()}}
	if cfg.DockerVersion == "" {
		cfg.DockerVersion = m.cfg.DockerVersion
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgDesc, cfgPath, err := writeBlob(stage, "config.json", MediaTypePluginConfig, cb)
	if err != nil {
		return err
	}
	mb, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: mediaTypeManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layer},
	})
	if err != nil {
		return err
	}
	mDesc, mPath, err := writeBlob(stage, "manifest.json", mediaTypeManifest, mb)
	if err != nil {
		return err
	}
	provider := distribution.FileProvider{layer.Digest: layerPath, cfgDesc.Digest: cfgPath, mDesc.Digest: mPath}
	return reg.PushFiles(ctx, ref, mDesc, provider, auth, out.emit)
}

func writeBlob(dir, name, mediaType string, b []byte) (ocispec.Descriptor, string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}, path, nil
}

// writeLayer packs rootfs into a gzipped tar at path and returns its descriptor and diff ID (the digest
// of the uncompressed tar). Everything is read through an os.Root, so a plugin that swaps a directory
// for a symlink meanwhile cannot make the daemon read outside its rootfs, and nothing mounted below
// rootfs (another file system) is descended into.
func writeLayer(rootfs, path string) (ocispec.Descriptor, digest.Digest, error) {
	var desc ocispec.Descriptor
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return desc, "", err
	}
	defer root.Close()
	rfi, err := root.Lstat(".")
	if err != nil {
		return desc, "", err
	}
	rootDev := devOf(rfi)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return desc, "", err
	}
	defer f.Close()
	compressed := &hashCounter{h: sha256.New()}
	gz := gzip.NewWriter(io.MultiWriter(f, compressed))
	uncompressed := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, uncompressed))
	links := map[[2]uint64]string{}

	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		fi, err := root.Lstat(rel)
		if err != nil {
			return err
		}
		otherFS := fi.IsDir() && devOf(fi) != rootDev
		var link string
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = root.Readlink(rel); err != nil {
				return err
			}
		case fi.Mode().IsRegular() || fi.IsDir():
		default:
			return nil // sockets, fifos, devices: not part of a plugin image
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			} else {
				links[key] = rel
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			src, err := root.Open(rel)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, io.LimitReader(src, h.Size))
			src.Close()
			if err != nil {
				return err
			}
			if n != h.Size {
				return fmt.Errorf("%s changed while being read", rel)
			}
		}
		if otherFS {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return desc, "", err
	}
	if err := tw.Close(); err != nil {
		return desc, "", err
	}
	if err := gz.Close(); err != nil {
		return desc, "", err
	}
	if err := f.Close(); err != nil {
		return desc, "", err
	}
	desc = ocispec.Descriptor{
		MediaType: mediaTypeLayerGzip,
		Digest:    digest.NewDigestFromBytes(digest.SHA256, compressed.h.Sum(nil)),
		Size:      compressed.n,
	}
	return desc, digest.NewDigestFromBytes(digest.SHA256, uncompressed.Sum(nil)), nil
}

func devOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}
