package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/distribution/reference"
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
	ApplyLayers(ctx context.Context, ref reference.Named, rm *distribution.RemoteManifest, auth *imagetypes.AuthConfig, dir string, diffIDs []string, out distribution.ProgressFunc) error
	PushFiles(ctx context.Context, ref reference.Named, manifest ocispec.Descriptor, files distribution.FileProvider, auth *imagetypes.AuthConfig, out distribution.ProgressFunc) error
}

// progressFunc receives the JSON messages of a pull, push or upgrade stream; nil discards them.
type progressFunc func(imagetypes.JSONMessage)

func (f progressFunc) emit(m imagetypes.JSONMessage) {
	if f != nil {
		f(m)
	}
}

func registryOf(m *Manager) (Registry, error) {
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
func fetchPlugin(ctx context.Context, reg Registry, ref reference.Named, auth *imagetypes.AuthConfig) (*distribution.RemoteManifest, types.Config, error) {
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
	reg, err := registryOf(m)
	if err != nil {
		return nil, err
	}
	ref, err := parseRemote(remote)
	if err != nil {
		return nil, err
	}
	_, cfg, err := fetchPlugin(ctx, reg, ref, auth)
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
	reg, err := registryOf(m)
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

	rm, cfg, err := fetchPlugin(ctx, reg, ref, auth)
	if err != nil {
		return err
	}
	if err := checkPrivileges(privileges, cfg); err != nil {
		return err
	}
	stage, err := stageDir(m.cfg.Root, "pull-")
	if err != nil {
		return err
	}
	defer removeAllUnmounted(stage)
	if err := unpack(ctx, reg, ref, rm, cfg, auth, filepath.Join(stage, "rootfs"), out); err != nil {
		return err
	}
	if _, err := m.commitStaged(stage, familiar, ref.String(), cfg); err != nil {
		return err
	}
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
	reg, err := registryOf(m)
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
	rm, cfg, err := fetchPlugin(ctx, reg, ref, auth)
	if err != nil {
		return err
	}
	if err := checkPrivileges(privileges, cfg); err != nil {
		return err
	}
	stage, err := stageDir(m.cfg.Root, "upgrade-")
	if err != nil {
		return err
	}
	defer removeAllUnmounted(stage)
	if err := unpack(ctx, reg, ref, rm, cfg, auth, filepath.Join(stage, "rootfs"), out); err != nil {
		return err
	}
	if p.IsEnabled() { // enabled by a lifecycle call that did not take the lock: never swap under a task
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin must be disabled before upgrading: plugin %s is enabled", p.Name()))
	}
	if err := swapRootfs(ctx, p, m.dir(p.ID()), cfg, ref.String(), filepath.Join(stage, "rootfs")); err != nil {
		return err
	}
	out.emit(imagetypes.JSONMessage{Status: "Digest: " + rm.Desc.Digest.String()})
	out.emit(imagetypes.JSONMessage{Status: "Status: Downloaded newer image for " + reference.FamiliarString(ref)})
	return nil
}

// Upgrade swaps a plugin's rootfs with a commit point: the new record is written to config.json.upgrade
// first, the old rootfs is renamed to rootfs-old and the new one put in place, then renaming
// config.json.upgrade over config.json commits. recoverUpgrade, run when a plugin is loaded, rolls an
// uncommitted swap back and finishes the clean-up of a committed one.
const (
	upgradeRecord = "config.json.upgrade"
	oldRootfs     = "rootfs-old"
)

func swapRootfs(ctx context.Context, p *v2.Plugin, dir string, cfg types.Config, ref, newRootfs string) error {
	if err := recoverUpgrade(dir); err != nil {
		return err
	}
	orig, backup, pending := filepath.Join(dir, "rootfs"), filepath.Join(dir, oldRootfs), filepath.Join(dir, upgradeRecord)
	// Nothing may stay mounted in the old rootfs (a plugin disabled with -f can leave mounts).
	if err := unmountUnder(orig); err != nil {
		return errors.Wrap(err, "upgrade: old rootfs still in use")
	}
	rec := p.Record()
	rec.Plugin.Config = cfg
	rec.Plugin.PluginReference = ref
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := writeFileSync(pending, b); err != nil {
		return err
	}
	if err := os.Rename(orig, backup); err != nil {
		os.Remove(pending)
		return err
	}
	if err := os.Rename(newRootfs, orig); err != nil {
		rollback(ctx, dir)
		return errors.Wrap(err, "upgrade: installing the new rootfs")
	}
	if err := os.Rename(pending, filepath.Join(dir, "config.json")); err != nil {
		rollback(ctx, dir)
		return errors.Wrap(err, "error saving upgraded plugin config")
	}
	p.Upgrade(cfg, ref, dir)
	if cfg.PropagatedMount != "" {
		if err := os.MkdirAll(filepath.Join(dir, "propagated-mount"), 0o700); err != nil {
			log.G(ctx).WithError(err).Warn("creating the upgraded plugin's propagated-mount directory")
		}
	}
	if err := removeAllUnmounted(backup); err != nil {
		log.G(ctx).WithError(err).WithField("plugin", p.Name()).Warn("removing the plugin's old rootfs")
	}
	return nil
}

func rollback(ctx context.Context, dir string) {
	if err := recoverUpgrade(dir); err != nil {
		log.G(ctx).WithError(err).WithField("dir", dir).Error("rolling back a failed plugin upgrade")
	}
}

// recoverUpgrade finishes what an interrupted upgrade of the plugin in dir left: without the commit
// (config.json.upgrade still there) the old rootfs is put back; after it, the old rootfs is deleted.
func recoverUpgrade(dir string) error {
	orig, backup, pending := filepath.Join(dir, "rootfs"), filepath.Join(dir, oldRootfs), filepath.Join(dir, upgradeRecord)
	_, perr := os.Lstat(pending)
	_, berr := os.Lstat(backup)
	switch {
	case perr == nil && berr == nil:
		if err := removeAllUnmounted(orig); err != nil {
			return err
		}
		if err := os.Rename(backup, orig); err != nil {
			return err
		}
		return os.Remove(pending)
	case perr == nil:
		return os.Remove(pending)
	case berr == nil:
		return removeAllUnmounted(backup)
	}
	return nil
}

// stageDir makes a private staging directory under <root>/tmp.
func stageDir(root, prefix string) (string, error) {
	stage, err := os.MkdirTemp(filepath.Join(root, "tmp"), prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(stage, 0o700); err != nil {
		os.RemoveAll(stage)
		return "", err
	}
	return stage, nil
}

// unpack makes rootfs and applies rm's layers to it, checking the config's diff IDs.
func unpack(ctx context.Context, reg Registry, ref reference.Named, rm *distribution.RemoteManifest, cfg types.Config, auth *imagetypes.AuthConfig, rootfs string, out progressFunc) error {
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return err
	}
	var diffIDs []string
	if cfg.Rootfs != nil {
		diffIDs = cfg.Rootfs.DiffIds
	}
	return reg.ApplyLayers(ctx, ref, rm, auth, rootfs, diffIDs, out.emit)
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
