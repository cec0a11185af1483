package buildkit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/client"
	bkconfig "github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/util/disk"
	"github.com/pkg/errors"
)

// GCConfig is daemon.json's builder.gc in the daemon's terms. Sizes are "10GB", bytes, or "N%" of the disk
// holding the data root; "" means not set.
type GCConfig struct {
	Disabled             bool
	DefaultReservedSpace string
	DefaultMaxUsedSpace  string
	DefaultMinFreeSpace  string
	// Policy replaces the default policy when not nil.
	Policy []GCRule
}

// GCRule is one builder.gc.policy rule.
type GCRule struct {
	All           bool
	Filters       map[string][]string
	ReservedSpace string
	MaxUsedSpace  string
	MinFreeSpace  string
}

// GCPolicy turns the daemon's builder.gc into BuildKit's policy as dockerd does: nothing when disabled;
// without rules, BuildKit's default policy (temporary caches kept 48 h under 512 MB, then anything unused
// for 60 days, then the size caps) with the configured defaults or, without them, caps derived from the
// disk holding root; with rules, each rule's sizes, falling back to the defaults.
func GCPolicy(cfg GCConfig, root string) ([]client.PruneInfo, error) {
	if cfg.Disabled {
		return nil, nil
	}
	dstat, err := disk.GetDiskStat(root)
	if err != nil {
		return nil, errors.Wrapf(err, "builder.gc: disk space of %s", root)
	}
	defaults, err := diskSpaces("builder.gc.default", cfg.DefaultReservedSpace, cfg.DefaultMaxUsedSpace, cfg.DefaultMinFreeSpace)
	if err != nil {
		return nil, err
	}
	if cfg.Policy == nil {
		var out []client.PruneInfo
		for _, p := range bkconfig.DefaultGCPolicy(defaults, dstat) {
			out = append(out, client.PruneInfo{
				All:           p.All,
				Filter:        p.Filters,
				KeepDuration:  p.KeepDuration.Duration,
				ReservedSpace: p.ReservedSpace.AsBytes(dstat),
				MaxUsedSpace:  p.MaxUsedSpace.AsBytes(dstat),
				MinFreeSpace:  p.MinFreeSpace.AsBytes(dstat),
			})
		}
		return out, nil
	}
	out := make([]client.PruneInfo, 0, len(cfg.Policy))
	for i, r := range cfg.Policy {
		sizes, err := diskSpaces(fmt.Sprintf("builder.gc.policy[%d].", i), r.ReservedSpace, r.MaxUsedSpace, r.MinFreeSpace)
		if err != nil {
			return nil, err
		}
		if sizes.GCReservedSpace == (bkconfig.DiskSpace{}) && sizes.GCMaxUsedSpace == (bkconfig.DiskSpace{}) && sizes.GCMinFreeSpace == (bkconfig.DiskSpace{}) {
			sizes = defaults
		}
		pi, err := pruneInfo(r.All, r.Filters)
		if err != nil {
			return nil, errors.Wrapf(err, "builder.gc.policy[%d]", i)
		}
		pi.ReservedSpace = sizes.GCReservedSpace.AsBytes(dstat)
		pi.MaxUsedSpace = sizes.GCMaxUsedSpace.AsBytes(dstat)
		pi.MinFreeSpace = sizes.GCMinFreeSpace.AsBytes(dstat)
		out = append(out, pi)
	}
	return out, nil
}

func diskSpaces(prefix, reserved, maxUsed, minFree string) (bkconfig.GCConfig, error) {
	var c bkconfig.GCConfig
	for _, f := range []struct {
		name string
		v    string
		dst  *bkconfig.DiskSpace
	}{{"ReservedSpace", reserved, &c.GCReservedSpace}, {"MaxUsedSpace", maxUsed, &c.GCMaxUsedSpace}, {"MinFreeSpace", minFree, &c.GCMinFreeSpace}} {
		if err := f.dst.UnmarshalText([]byte(f.v)); err != nil {
			return c, errors.Wrapf(errdefs.ErrInvalidArgument, "%s%s: invalid size %q", prefix, f.name, f.v)
		}
	}
	return c, nil
}

// pruneInfo maps prune filters to BuildKit's, as dockerd does: until (or its older name unused-for) is a
// keep duration; id matches by prefix; parent is BuildKit's parents; the others compare for equality;
// each filter takes one value.
func pruneInfo(all bool, filters map[string][]string) (client.PruneInfo, error) {
	pi := client.PruneInfo{All: all}
	until, unusedFor := filters["until"], filters["unused-for"]
	if len(until) > 0 && len(unusedFor) > 0 {
		return pi, errors.Wrap(errdefs.ErrInvalidArgument, `conflicting filters "until" and "unused-for"`)
	}
	key := "until"
	if len(unusedFor) > 0 {
		until, key = unusedFor, "unused-for"
	}
	switch len(until) {
	case 0:
	case 1:
		d, err := parseUntil(until[0])
		if err != nil {
			return pi, errors.Wrapf(errdefs.ErrInvalidArgument, "%q filter expects a duration (e.g., '24h') or a timestamp, got %q", key, until[0])
		}
		pi.KeepDuration = d
	default:
		return pi, errors.Wrap(errdefs.ErrInvalidArgument, "filters expect only one value")
	}
	var bk []string
	keys := make([]string, 0, len(filters))
	for k := range filters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "until" || k == "unused-for" {
			continue
		}
		vs := filters[k]
		field := k
		if field == "parent" {
			field = "parents"
		}
		switch len(vs) {
		case 0:
			bk = append(bk, field)
		case 1:
			if field == "id" {
				bk = append(bk, field+"~="+vs[0])
			} else {
				bk = append(bk, field+"=="+vs[0])
			}
		default:
			return pi, errors.Wrap(errdefs.ErrInvalidArgument, "filters expect only one value")
		}
	}
	if len(bk) > 0 {
		pi.Filter = []string{strings.Join(bk, ",")}
	}
	return pi, nil
}

// parseUntil reads a duration, or a Unix or RFC 3339 timestamp turned into the time since then.
func parseUntil(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return time.Since(t), nil
		}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Since(time.Unix(0, int64(f*1e9))), nil
	}
	return 0, errors.Errorf("invalid duration or timestamp %q", v)
}
