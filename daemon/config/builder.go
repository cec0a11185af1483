package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// BuilderConfig is daemon.json's "builder" (dockerd's names; encoding/json matches them case-insensitively
// as dockerd's decoder does). Keys berthd does not know are refused by name when the file is loaded.
type BuilderConfig struct {
	GC           BuilderGCConfig     `json:"gc,omitempty"`
	Entitlements BuilderEntitlements `json:"entitlements,omitempty"`
}

// BuilderGCConfig is BuildKit's cache garbage collection. Sizes are "10GB", "512MB", "10%" (of the disk
// holding the data root) or bytes; an empty one means "not set".
type BuilderGCConfig struct {
	// Enabled nil means on, as in dockerd.
	Enabled *bool `json:"enabled,omitempty"`
	// DefaultKeepStorage is DefaultReservedSpace's older name, used when the latter is not set.
	DefaultKeepStorage   string          `json:"defaultKeepStorage,omitempty"`
	DefaultReservedSpace string          `json:"defaultReservedSpace,omitempty"`
	DefaultMaxUsedSpace  string          `json:"defaultMaxUsedSpace,omitempty"`
	DefaultMinFreeSpace  string          `json:"defaultMinFreeSpace,omitempty"`
	Policy               []BuilderGCRule `json:"policy,omitempty"`
}

// BuilderGCRule is one rule of builder.gc.policy, applied in order.
type BuilderGCRule struct {
	All bool `json:"all,omitempty"`
	// Filter is prune's filters ("unused-for=24h", "type=exec.cachemount"); dockerd also reads the
	// filters' JSON map form, which UnmarshalJSON accepts.
	Filter        BuilderGCFilter `json:"filter,omitempty"`
	KeepStorage   string          `json:"keepStorage,omitempty"`
	ReservedSpace string          `json:"reservedSpace,omitempty"`
	MaxUsedSpace  string          `json:"maxUsedSpace,omitempty"`
	MinFreeSpace  string          `json:"minFreeSpace,omitempty"`
}

// BuilderGCFilter maps a filter key to its values.
type BuilderGCFilter map[string][]string

// UnmarshalJSON reads ["key=value", ...] or {"key": {"value": true}}.
func (f *BuilderGCFilter) UnmarshalJSON(b []byte) error {
	out := BuilderGCFilter{}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		for _, kv := range list {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("invalid filter %q: expected key=value", kv)
			}
			out[k] = append(out[k], v)
		}
		*f = out
		return nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("invalid filter: expected a list of key=value or a map of key to {value: true}")
	}
	for k, vs := range m {
		for v, on := range vs {
			if on {
				out[k] = append(out[k], v)
			}
		}
		sort.Strings(out[k])
	}
	*f = out
	return nil
}

// BuilderEntitlements are what builds may ask for; nil means dockerd's default (network-host allowed,
// security-insecure not).
type BuilderEntitlements struct {
	NetworkHost      *bool `json:"network-host,omitempty"`
	SecurityInsecure *bool `json:"security-insecure,omitempty"`
}

// UnmarshalJSON refuses keys berthd does not act on (builder.history, ...), naming them.
func (c *BuilderConfig) UnmarshalJSON(b []byte) error {
	type plain BuilderConfig
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("builder: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	*c = BuilderConfig(p)
	return nil
}

// FeaturesConfig is daemon.json's "features". berthd always uses the containerd image store and serves
// BuildKit; buildkit=false only changes what /_ping advertises and refuses POST /build?version=2.
type FeaturesConfig map[string]bool

// BuildKitEnabled reports whether POST /build?version=2 is served (dockerd's default on Linux: yes).
func (f FeaturesConfig) BuildKitEnabled() bool {
	v, ok := f["buildkit"]
	return !ok || v
}

func (f FeaturesConfig) validate() error {
	var bad []string
	for k, v := range f {
		switch {
		case k == "buildkit":
		case k == "containerd-snapshotter" && v:
		default:
			bad = append(bad, fmt.Sprintf("%s=%v", k, v))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("features: berthd does not support %s (only buildkit and containerd-snapshotter=true describe berthd)", strings.Join(bad, ", "))
	}
	return nil
}

// validSize is what BuildKit reads: docker/go-units' RAMInBytes, or a whole percentage of the disk.
func validSize(v string) bool {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.ParseInt(p, 10, 64)
		return err == nil && n >= 0 && n <= 100
	}
	n, err := units.RAMInBytes(v)
	return err == nil && n >= 0
}

func (c *BuilderConfig) validate() error {
	check := func(key, v string) error {
		if v != "" && !validSize(v) {
			return fmt.Errorf("builder.gc.%s: invalid size %q (expected bytes such as \"10GB\" or a percentage such as \"10%%\")", key, v)
		}
		return nil
	}
	gc := c.GC
	for k, v := range map[string]string{"defaultKeepStorage": gc.DefaultKeepStorage, "defaultReservedSpace": gc.DefaultReservedSpace, "defaultMaxUsedSpace": gc.DefaultMaxUsedSpace, "defaultMinFreeSpace": gc.DefaultMinFreeSpace} {
		if err := check(k, v); err != nil {
			return err
		}
	}
	for i, r := range gc.Policy {
		for k, v := range map[string]string{"keepStorage": r.KeepStorage, "reservedSpace": r.ReservedSpace, "maxUsedSpace": r.MaxUsedSpace, "minFreeSpace": r.MinFreeSpace} {
			if err := check(fmt.Sprintf("policy[%d].%s", i, k), v); err != nil {
				return err
			}
		}
		for k, vs := range r.Filter {
			if !gcFilterKeys[k] {
				return fmt.Errorf("builder.gc.policy[%d].filter: invalid filter %q", i, k)
			}
			if (k == "until" || k == "unused-for") && len(vs) > 0 {
				if _, err := time.ParseDuration(vs[0]); err != nil {
					return fmt.Errorf("builder.gc.policy[%d].filter: %s expects a duration such as 24h, got %q", i, k, vs[0])
				}
			}
		}
	}
	return nil
}

// gcFilterKeys are the build cache prune filters (POST /build/prune's).
var gcFilterKeys = map[string]bool{
	"until": true, "unused-for": true, "id": true, "parent": true, "type": true, "description": true,
	"inuse": true, "shared": true, "private": true, "label": true, "label!": true,
}
