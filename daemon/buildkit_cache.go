package daemon

import (
	"context"
	"io"
	"strconv"

	buildtypes "github.com/berthd/berthd/api/types/build"
	imagetypes "github.com/berthd/berthd/api/types/image"
	systemtypes "github.com/berthd/berthd/api/types/system"
	"github.com/berthd/berthd/daemon/config"
	"github.com/berthd/berthd/image/buildkit"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/pkg/errors"
)

// buildKitSettings maps daemon.json's builder key to BuildKit's GC policy and entitlements.
func buildKitSettings(cfg *config.Config) ([]client.PruneInfo, []string, error) {
	gc := cfg.Builder.GC
	bc := buildkit.GCConfig{
		Disabled:             gc.Enabled != nil && !*gc.Enabled,
		DefaultReservedSpace: gc.DefaultReservedSpace,
		DefaultMaxUsedSpace:  gc.DefaultMaxUsedSpace,
		DefaultMinFreeSpace:  gc.DefaultMinFreeSpace,
	}
	if bc.DefaultReservedSpace == "" {
		bc.DefaultReservedSpace = gc.DefaultKeepStorage
	}
	if gc.Policy != nil {
		bc.Policy = []buildkit.GCRule{}
	}
	for _, r := range gc.Policy {
		rule := buildkit.GCRule{All: r.All, Filters: r.Filter, ReservedSpace: r.ReservedSpace, MaxUsedSpace: r.MaxUsedSpace, MinFreeSpace: r.MinFreeSpace}
		if rule.ReservedSpace == "" {
			rule.ReservedSpace = r.KeepStorage
		}
		bc.Policy = append(bc.Policy, rule)
	}
	policy, err := buildkit.GCPolicy(bc, cfg.Root)
	if err != nil {
		return nil, nil, err
	}
	var ents []string
	if e := cfg.Builder.Entitlements.NetworkHost; e == nil || *e {
		ents = append(ents, string(entitlements.EntitlementNetworkHost))
	}
	if e := cfg.Builder.Entitlements.SecurityInsecure; e != nil && *e {
		ents = append(ents, string(entitlements.EntitlementSecurityInsecure))
	}
	if ents == nil {
		ents = []string{}
	}
	return policy, ents, nil
}

// BuildCache is the build router's BuildKit side of POST /build?version=2, /build/cancel and
// /build/prune: the embedded BuildKit, daemon.json's features.buildkit, and the builder prune event.
type BuildCache struct{ d *Daemon }

// BuildCache returns the build router's BuildKit backend; nil when BuildKit is not running.
func (d *Daemon) BuildCache() *BuildCache {
	if d.buildkit == nil {
		return nil
	}
	return &BuildCache{d: d}
}

// Build is POST /build?version=2.
func (c *BuildCache) Build(ctx context.Context, opts buildtypes.Options, body io.Reader, out func(imagetypes.JSONMessage)) (string, error) {
	if !c.d.cfg.Features.BuildKitEnabled() {
		return "", errors.Wrap(errdefs.ErrNotImplemented, "BuildKit (version=2) is disabled by daemon.json's features.buildkit=false; use the classic builder (DOCKER_BUILDKIT=0)")
	}
	return c.d.buildkit.Build(ctx, opts, body, out)
}

// Cancel is POST /build/cancel.
func (c *BuildCache) Cancel(ctx context.Context, id string) error {
	return c.d.buildkit.Cancel(ctx, id)
}

// Prune is POST /build/prune; it logs a builder prune event with the bytes reclaimed, as dockerd does.
func (c *BuildCache) Prune(ctx context.Context, opts buildtypes.PruneOptions) (buildtypes.CachePruneReport, error) {
	rep, err := c.d.buildkit.Prune(ctx, opts)
	if err != nil {
		return rep, err
	}
	c.d.events.Log("prune", "builder", eventActor("", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)}))
	return rep, nil
}

// BuilderVersion is /_ping's Builder-Version: "2" unless daemon.json turns BuildKit off.
func (b *SystemBackend) BuilderVersion() string {
	if b.d.buildkit == nil || !b.d.cfg.Features.BuildKitEnabled() {
		return "1"
	}
	return "2"
}

// addBuildCacheUsage fills /system/df's BuildCache rows from BuildKit.
func addBuildCacheUsage(ctx context.Context, bk *buildkit.BuildKit, opts systemtypes.DiskUsageOptions, du *systemtypes.DiskUsage) error {
	if !opts.BuildCache {
		return nil
	}
	recs, err := bk.DiskUsage(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		du.BuildCache = append(du.BuildCache, r)
	}
	return nil
}
