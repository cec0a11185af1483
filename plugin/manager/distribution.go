package manager

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"time"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"

	eventtypes "github.com/berthd/berthd/api/types/events"
	imagetypes "github.com/berthd/berthd/api/types/image"
	types "github.com/berthd/berthd/api/types/plugin"
	"github.com/berthd/berthd/distribution"
	v2 "github.com/berthd/berthd/plugin/v2"
)

// MediaTypePluginConfig is the media type of a plugin image's config blob (its config.json).
const MediaTypePluginConfig = "application/vnd.docker.plugin.v1+json"

// Registry is what install, push and upgrade need from distribution.Service.
type Registry interface {
	FetchManifest(ctx context.Context, ref reference.Named, auth *imagetypes.AuthConfig) (*distribution.RemoteManifest, error)
	OpenBlob(ctx context.Context, ref reference.Named, rm *distribution.RemoteManifest, desc ocispec.Descriptor, auth *imagetypes.AuthConfig) (io.ReadCloser, error)
	PushFrom(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, provider content.Provider, auth *imagetypes.AuthConfig, out distribution.ProgressFunc) error
}

// progressFunc receives the JSON messages of a pull, push or upgrade stream; nil discards them.
type progressFunc func(imagetypes.JSONMessage)

func (f progressFunc) emit(m imagetypes.JSONMessage) {
	if f != nil {
		f(m)
	}
}

func (m *Manager) registry() (Registry, error) {
	if m.cfg.Registry == nil {
		return nil, errdefs.ErrNotImplemented.WithMessage("plugin distribution is not configured in this daemon")
	}
	return m.cfg.Registry, nil
}

// parseRemote parses a registry reference; ":latest" is implied unless a digest is given.
func parseRemote(remote string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(remote)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid remote reference %q: %v", remote, err))
	}
	if _, ok := ref.(reference.Canonical); ok {
		return ref, nil
	}
	return reference.TagNameOnly(ref), nil
}

// localRef is the name a pulled plugin gets: name when given, else the remote's name and tag (a digest
// reference gets ":latest").
func localRef(remote reference.Named, name string) (reference.NamedTagged, error) {
	if name != "" {
		return normalizeName(name)
	}
	if t, ok := remote.(reference.NamedTagged); ok {
		return t, nil
	}
	return normalizeName(reference.TrimNamed(remote).String())
}

// PullName is the local name POST /plugins/pull will give the plugin (its Docker-Plugin-Name header).
func (m *Manager) PullName(remote, name string) (string, error) {
	ref, err := parseRemote(remote)
	if err != nil {
		return "", err
	}
	local, err := localRef(ref, name)
	if err != nil {
		return "", err
	}
	return reference.FamiliarString(local), nil
}

// fetchPlugin fetches remote's manifest and plugin config and validates them.
func (m *Manager) fetchPlugin(ctx context.Context, reg Registry, ref reference.Named, auth *imagetypes.AuthConfig) (*distribution.RemoteManifest, types.Config, error) {
	var cfg types.Config
	rm, err := reg.FetchManifest(ctx, ref, auth)
	if err != nil {
		return nil, cfg, err
	}
	if mt := rm.Manifest.Config.MediaType; mt != MediaTypePluginConfig {
		return nil, cfg, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is not a plugin: config media type is %q, not %q", reference.FamiliarString(ref), mt, MediaTypePluginConfig))
	}
	if err := json.Unmarshal(rm.Config, &cfg); err != nil {
		return nil, cfg, errdefs.ErrInvalidArgument.WithMessage("invalid plugin config: " + err.Error())
	}
	if err := v2.ValidateConfig(&cfg); err != nil {
		return nil, cfg, err
	}
	if len(rm.Manifest.Layers) == 0 {
		return nil, cfg, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: plugin image has no layers", reference.FamiliarString(ref)))
	}
	for _, l := range rm.Manifest.Layers {
		if !images.IsLayerType(l.MediaType) {
			return nil, cfg, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: unsupported layer media type %q", reference.FamiliarString(ref), l.MediaType))
		}
	}
	if cfg.Rootfs != nil && len(cfg.Rootfs.DiffIds) != 0 && len(cfg.Rootfs.DiffIds) != len(rm.Manifest.Layers) {
		return nil, cfg, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s: %d layers but %d diff_ids", reference.FamiliarString(ref), len(rm.Manifest.Layers), len(cfg.Rootfs.DiffIds)))
	}
	if cfg.Rootfs == nil {
		cfg.Rootfs = &types.Rootfs{Type: "layers"}
	}
	return rm, cfg, nil
}

// Privileges are the privileges remote's plugin asks for (GET /plugins/privileges). Unlike dockerd,
// which answers an empty list, a registry error is returned as such.
func (m *Manager) Privileges(ctx context.Context, remote string, auth *imagetypes.AuthConfig) ([]types.Privilege, error) {
	reg, err := m.registry()
	if err != nil {
		return nil, err
	}
	ref, err := parseRemote(remote)
	if err != nil {
		return nil, err
	}
	_, cfg, err := m.fetchPlugin(ctx, reg, ref, auth)
	if err != nil {
		return nil, err
	}
	privs := v2.Privileges(cfg)
	if privs == nil {
		privs = []types.Privilege{}
	}
	return privs, nil
}

// checkPrivileges compares what the client granted with what the plugin asks for (names and values;
// order and descriptions do not matter).
func checkPrivileges(granted []types.Privilege, cfg types.Config) error {
	norm := func(ps []types.Privilege) []types.Privilege {
		out := make([]types.Privilege, 0, len(ps))
		for _, p := range ps {
			v := append([]string{}, p.Value...)
			out = append(out, types.Privilege{Name: p.Name, Value: v})
		}
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Name != out[j].Name {
				return out[i].Name < out[j].Name
			}
			return fmt.Sprint(out[i].Value) < fmt.Sprint(out[j].Value)
		})
		return out
	}
	if !reflect.DeepEqual(norm(granted), norm(v2.Privileges(cfg))) {
		return errdefs.ErrInvalidArgument.WithMessage("incorrect privileges")
	}
	return nil
}

// Pull installs remote as a new, disabled plugin called name (the remote's name when empty), after
// checking that privileges are exactly what it asks for (POST /plugins/pull). A taken name is
// InvalidArgument, as dockerd reports it.
func (m *Manager) Pull(ctx context.Context, remote, name string, privileges []types.Privilege, auth *imagetypes.AuthConfig, progress func(imagetypes.JSONMessage)) error {
	out := progressFunc(progress)
	reg, err := m.registry()
	if err != nil {
		return err
	}
	ref, err := parseRemote(remote)
	if err != nil {
		return err
	}
	local, err := localRef(ref, name)
	if err != nil {
		return err
	}
	familiar := reference.FamiliarString(local)
	if err := m.reserve(familiar); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	defer m.unreserve(familiar)

	rm, cfg, err := m.fetchPlugin(ctx, reg, ref, auth)
	if err != nil {
		return err
	}
	if err := checkPrivileges(privileges, cfg); err != nil {
		return err
	}
	stage, err := m.stage("pull-")
	if err != nil {
		return err
	}
	defer removeAllUnmounted(stage)
	if err := m.unpack(ctx, reg, ref, rm, cfg, auth, filepath.Join(stage, "rootfs"), out); err != nil {
		return err
	}
	id, err := m.newID()
	if err != nil {
		return err
	}
	dir := m.dir(id)
	p := v2.NewFromConfig(id, familiar, ref.String(), cfg, dir)
	if p.PropagatedMountHost() != "" {
		if err := os.MkdirAll(filepath.Join(stage, "propagated-mount"), 0o700); err != nil {
			return err
		}
	}
	b, err := json.Marshal(p.Record())
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(stage, "config.json"), b); err != nil {
		return err
	}
	if err := os.Rename(stage, dir); err != nil {
		return err
	}
	m.mu.Lock()
	m.plugins[id] = p
	m.mu.Unlock()
	if m.events != nil {
		m.events.Log("pull", eventtypes.PluginEventType, eventtypes.Actor{ID: reference.FamiliarString(ref), Attributes: map[string]string{"name": familiar}})
	}
	out.emit(imagetypes.JSONMessage{Status: "Digest: " + rm.Desc.Digest.String()})
	out.emit(imagetypes.JSONMessage{Status: "Status: Downloaded newer image for " + reference.FamiliarString(ref)})
	return nil
}

// Upgrade replaces a disabled plugin's rootfs and manifest with remote's (POST /plugins/{name}/upgrade),
// keeping its ID, name and settings. The old rootfs is kept until the new record is saved.
func (m *Manager) Upgrade(ctx context.Context, name, remote string, privileges []types.Privilege, auth *imagetypes.AuthConfig, progress func(imagetypes.JSONMessage)) error {
	out := progressFunc(progress)
	reg, err := m.registry()
	if err != nil {
		return err
	}
	p, err := m.resolve(name)
	if err != nil {
		return err
	}
	if remote == "" {
		remote = p.Object().PluginReference
	}
	ref, err := parseRemote(remote)
	if err != nil {
		return err
	}
	m.locks.Lock(p.ID())
	defer m.locks.Unlock(p.ID())
	if p.IsEnabled() {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin must be disabled before upgrading: plugin %s is enabled", p.Name()))
	}
	rm, cfg, err := m.fetchPlugin(ctx, reg, ref, auth)
	if err != nil {
		return err
	}
	if err := checkPrivileges(privileges, cfg); err != nil {
		return err
	}
	stage, err := m.stage("upgrade-")
	if err != nil {
		return err
	}
	defer removeAllUnmounted(stage)
	if err := m.unpack(ctx, reg, ref, rm, cfg, auth, filepath.Join(stage, "rootfs"), out); err != nil {
		return err
	}
	if p.IsEnabled() { // enabled by a lifecycle call that did not take the lock: never swap under a task
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin must be disabled before upgrading: plugin %s is enabled", p.Name()))
	}
	dir := m.dir(p.ID())
	orig, backup := filepath.Join(dir, "rootfs"), filepath.Join(dir, "rootfs-old")
	if err := removeAllUnmounted(backup); err != nil {
		return err
	}
	// Nothing may stay mounted in the old rootfs (a plugin disabled with -f can leave mounts).
	if err := unmountUnder(orig); err != nil {
		return errors.Wrap(err, "upgrade: old rootfs still in use")
	}
	if err := os.Rename(orig, backup); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(stage, "rootfs"), orig); err != nil {
		_ = os.Rename(backup, orig)
		return err
	}
	old := p.Object()
	p.Upgrade(cfg, ref.String(), dir)
	if cfg.PropagatedMount != "" {
		if err := os.MkdirAll(filepath.Join(dir, "propagated-mount"), 0o700); err != nil {
			log.G(ctx).WithError(err).Warn("creating the upgraded plugin's propagated-mount directory")
		}
	}
	if err := m.save(p); err != nil {
		p.Upgrade(old.Config, old.PluginReference, dir)
		_ = os.RemoveAll(orig)
		_ = os.Rename(backup, orig)
		return errors.Wrap(err, "error saving upgraded plugin config")
	}
	if err := removeAllUnmounted(backup); err != nil {
		log.G(ctx).WithError(err).WithField("plugin", p.Name()).Warn("removing the plugin's old rootfs")
	}
	out.emit(imagetypes.JSONMessage{Status: "Digest: " + rm.Desc.Digest.String()})
	out.emit(imagetypes.JSONMessage{Status: "Status: Downloaded newer image for " + reference.FamiliarString(ref)})
	return nil
}

// stage makes a private staging directory under <Root>/tmp.
func (m *Manager) stage(prefix string) (string, error) {
	stage, err := os.MkdirTemp(filepath.Join(m.cfg.Root, "tmp"), prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(stage, 0o700); err != nil {
		os.RemoveAll(stage)
		return "", err
	}
	return stage, nil
}

// unpack downloads rm's layers in order and applies them to rootfs (created here), verifying each
// blob's digest and, when the config lists them, each layer's diff ID. containerd's archive.Apply keeps
// every entry (and link) inside rootfs.
func (m *Manager) unpack(ctx context.Context, reg Registry, ref reference.Named, rm *distribution.RemoteManifest, cfg types.Config, auth *imagetypes.AuthConfig, rootfs string, out progressFunc) error {
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return err
	}
	tag := "latest"
	if t, ok := ref.(reference.Tagged); ok {
		tag = t.Tag()
	} else if c, ok := ref.(reference.Canonical); ok {
		tag = c.Digest().String()
	}
	out.emit(imagetypes.JSONMessage{Status: "Pulling from " + reference.FamiliarName(ref), ID: tag})
	for _, l := range rm.Manifest.Layers {
		out.emit(imagetypes.JSONMessage{Status: "Pulling fs layer", ID: shortDigest(l.Digest)})
	}
	for i, l := range rm.Manifest.Layers {
		if err := m.applyLayer(ctx, reg, ref, rm, l, auth, rootfs, cfg, i, out); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) applyLayer(ctx context.Context, reg Registry, ref reference.Named, rm *distribution.RemoteManifest, l ocispec.Descriptor, auth *imagetypes.AuthConfig, rootfs string, cfg types.Config, i int, out progressFunc) error {
	id := shortDigest(l.Digest)
	rc, err := reg.OpenBlob(ctx, ref, rm, l, auth)
	if err != nil {
		return err
	}
	defer rc.Close()
	cr := &countingReader{r: rc, total: l.Size, report: func(n int64) {
		out.emit(imagetypes.JSONMessage{Status: "Downloading", ID: id, Progress: &imagetypes.JSONProgress{Current: n, Total: l.Size}})
	}}
	dr, err := compression.DecompressStream(cr)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("layer %s: %v", l.Digest, err))
	}
	defer dr.Close()
	h := sha256.New()
	tee := io.TeeReader(dr, h)
	if _, err := archive.Apply(ctx, rootfs, tee); err != nil {
		return errors.Wrapf(err, "applying layer %s", l.Digest)
	}
	// Read both streams to their ends: the blob's digest is checked at EOF.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return errors.Wrapf(err, "layer %s", l.Digest)
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return errors.Wrapf(err, "layer %s", l.Digest)
	}
	diffID := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	if cfg.Rootfs != nil && i < len(cfg.Rootfs.DiffIds) && cfg.Rootfs.DiffIds[i] != diffID.String() {
		return errdefs.ErrDataLoss.WithMessage(fmt.Sprintf("layer %s: diff ID %s does not match the config's %s", l.Digest, diffID, cfg.Rootfs.DiffIds[i]))
	}
	out.emit(imagetypes.JSONMessage{Status: "Download complete", ID: id})
	return nil
}

func shortDigest(d digest.Digest) string {
	s := d.Encoded()
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// countingReader reports how much was read, at most every 200 ms (and at the end).
type countingReader struct {
	r      io.Reader
	n      int64
	total  int64
	last   time.Time
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 && (time.Since(c.last) >= 200*time.Millisecond || c.n >= c.total) {
		c.last = time.Now()
		c.report(c.n)
	}
	return n, err
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
