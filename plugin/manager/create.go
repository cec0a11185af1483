package manager

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/moby/sys/atomicwriter"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/pkg/errors"

	types "github.com/berthd/berthd/api/types/plugin"
	v2 "github.com/berthd/berthd/plugin/v2"
)

// maxConfigSize bounds config.json in a create tarball.
const maxConfigSize = 1 << 20

// Create makes a disabled plugin called name from an uncompressed tar holding config.json and rootfs/.
// Errors: InvalidArgument for a bad name or tarball, Conflict when the name is taken.
func (m *Manager) Create(ctx context.Context, name string, tarball io.Reader) error {
	ref, err := normalizeName(name)
	if err != nil {
		return err
	}
	familiar := reference.FamiliarString(ref)
	if err := m.reserve(familiar); err != nil {
		return err
	}
	defer m.unreserve(familiar)

	stage, err := os.MkdirTemp(filepath.Join(m.cfg.Root, "tmp"), "create-")
	if err != nil {
		return err
	}
	defer removeAllUnmounted(stage)
	if err := os.Chmod(stage, 0o700); err != nil {
		return err
	}
	cfgJSON, err := extract(tarball, stage)
	if err != nil {
		return err
	}
	var cfg types.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("invalid plugin config: " + err.Error())
	}
	if err := v2.ValidateConfig(&cfg); err != nil {
		return err
	}
	cfg.DockerVersion = m.cfg.DockerVersion
	cfg.Rootfs = &types.Rootfs{Type: "layers"}
	p, err := m.commitStaged(stage, familiar, ref.String(), cfg)
	if err != nil {
		return err
	}
	m.emit("create", p)
	return nil
}

func (m *Manager) reserve(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	taken := m.reserved[name]
	for _, p := range m.plugins {
		if p.Name() == name {
			taken = true
		}
	}
	if taken {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s already exists", name))
	}
	m.reserved[name] = true
	return nil
}

func (m *Manager) unreserve(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.reserved, name)
}

// newID is a random 64-hex ID whose first 12 digits are unused (socket directories are named by them).
func (m *Manager) newID() (string, error) {
	for {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		id := hex.EncodeToString(b)
		m.mu.RLock()
		clash := false
		for other := range m.plugins {
			if other[:12] == id[:12] {
				clash = true
			}
		}
		m.mu.RUnlock()
		if _, err := os.Lstat(m.dir(id)); err == nil {
			clash = true
		}
		if !clash {
			return id, nil
		}
	}
}

// extract unpacks config.json (returned, not written) and rootfs/... into dst/rootfs. Every write goes
// through an os.Root on dst/rootfs, so no entry (nor a symlink it made) can reach outside it.
func extract(r io.Reader, dst string) ([]byte, error) {
	rootfs := filepath.Join(dst, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// `docker plugin create --compress` sends gzip; dockerd refuses it, berthd accepts it.
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid plugin tarball: " + err.Error())
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	var cfg []byte
	sawRootfs := false
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid plugin tarball: " + err.Error())
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "config.json" {
			if h.Typeflag != tar.TypeReg {
				return nil, errdefs.ErrInvalidArgument.WithMessage("invalid plugin tarball: config.json is not a file")
			}
			cfg, err = io.ReadAll(io.LimitReader(tr, maxConfigSize+1))
			if err != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage("invalid plugin tarball: " + err.Error())
			}
			if len(cfg) > maxConfigSize {
				return nil, errdefs.ErrInvalidArgument.WithMessage("plugin config too large")
			}
			continue
		}
		rel, ok := strings.CutPrefix(name, "rootfs")
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
			continue // dockerd ignores other entries
		}
		sawRootfs = true
		rel = strings.TrimPrefix(rel, "/")
		if rel == "" || rel == "." {
			continue
		}
		if !fs.ValidPath(rel) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid plugin tarball: bad path %q", h.Name))
		}
		if err := writeEntry(root, rel, h, tr); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid plugin tarball: %s: %v", h.Name, err))
		}

	}
	if cfg == nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("config not found")
	}
	if !sawRootfs {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no rootfs found")
	}
	return cfg, nil
}

func writeEntry(root *os.Root, rel string, h *tar.Header, r io.Reader) error {
	mode := h.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(rel, 0o755); err != nil {
			return err
		}
		_ = root.Lchown(rel, h.Uid, h.Gid)
		return root.Chmod(rel, mode.Perm()|dirSpecial(mode))
	case tar.TypeReg, tar.TypeRegA:
		_ = root.Remove(rel)
		f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		// Ownership as in the tarball, before the mode (chown clears set-id bits); best effort.
		_ = root.Lchown(rel, h.Uid, h.Gid)
		return root.Chmod(rel, mode)
	case tar.TypeSymlink:
		_ = root.Remove(rel)
		if err := root.Symlink(h.Linkname, rel); err != nil {
			return err
		}
		_ = root.Lchown(rel, h.Uid, h.Gid)
		return nil
	case tar.TypeLink:
		target := path.Clean(strings.TrimPrefix(strings.TrimPrefix(h.Linkname, "./"), "rootfs/"))
		if !fs.ValidPath(target) {
			return errors.Errorf("bad link target %q", h.Linkname)
		}
		_ = root.Remove(rel)
		return root.Link(target, rel)
	default:
		// Devices, fifos and the like have no place in a plugin rootfs: the runtime provides /dev.
		return nil
	}
}

func dirSpecial(m os.FileMode) os.FileMode { return m & os.ModeSticky }

// commitStaged turns a staged directory holding rootfs/ into an installed, disabled plugin: a fresh ID, its
// record written durably, then one rename into place, so a crash leaves either no plugin or a whole one.
// Create and install (pull) share it.
func (m *Manager) commitStaged(stage, name, ref string, cfg types.Config) (*v2.Plugin, error) {
	id, err := m.newID()
	if err != nil {
		return nil, err
	}
	dir := m.dir(id)
	p := v2.NewFromConfig(id, name, ref, cfg, dir)
	if p.PropagatedMountHost() != "" {
		if err := os.MkdirAll(filepath.Join(stage, "propagated-mount"), 0o700); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(p.Record())
	if err != nil {
		return nil, err
	}
	if err := atomicwriter.WriteFile(filepath.Join(stage, "config.json"), b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.plugins[id] = p
	m.mu.Unlock()
	return p, nil
}
