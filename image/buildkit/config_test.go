package buildkit

import (
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// gb is what "1GB" means in daemon.json: binary units, as docker/go-units' RAMInBytes reads them.
const gb = int64(1) << 30

func TestGCPolicyDefault(t *testing.T) {
	p, err := GCPolicy(GCConfig{DefaultReservedSpace: "2GB", DefaultMaxUsedSpace: "20GB", DefaultMinFreeSpace: "1GB"}, t.TempDir())
	assert.NilError(t, err)
	assert.Assert(t, is.Len(p, 4))
	// Temporary caches first: kept 48 h while they stay under 512 MB.
	assert.Check(t, is.DeepEqual(p[0], client.PruneInfo{Filter: []string{"type==source.local,type==exec.cachemount,type==source.git.checkout"}, KeepDuration: 48 * time.Hour, MaxUsedSpace: 512e6}))
	caps := client.PruneInfo{ReservedSpace: 2 * gb, MaxUsedSpace: 20 * gb, MinFreeSpace: gb}
	want60d := caps
	want60d.KeepDuration = 60 * 24 * time.Hour
	assert.Check(t, is.DeepEqual(p[1], want60d))
	assert.Check(t, is.DeepEqual(p[2], caps))
	all := caps
	all.All = true
	assert.Check(t, is.DeepEqual(p[3], all))
}

func TestGCPolicyDefaultCapsFromDisk(t *testing.T) {
	p, err := GCPolicy(GCConfig{}, t.TempDir())
	assert.NilError(t, err)
	assert.Assert(t, is.Len(p, 4))
	// Without sizes, the caps come from the disk: at most 10 GB reserved, 100 GB used, 20% kept free.
	assert.Check(t, p[3].ReservedSpace > 0 && p[3].ReservedSpace <= 10e9, "%d", p[3].ReservedSpace)
	assert.Check(t, p[3].MaxUsedSpace > 0 && p[3].MaxUsedSpace <= 100e9, "%d", p[3].MaxUsedSpace)
	assert.Check(t, p[3].MinFreeSpace > 0)
}

func TestGCPolicyDisabled(t *testing.T) {
	p, err := GCPolicy(GCConfig{Disabled: true, Policy: []GCRule{{All: true}}}, t.TempDir())
	assert.NilError(t, err)
	assert.Check(t, is.Len(p, 0))
}

func TestGCPolicyRules(t *testing.T) {
	p, err := GCPolicy(GCConfig{DefaultReservedSpace: "5GB", Policy: []GCRule{
		{ReservedSpace: "10GB", Filters: map[string][]string{"unused-for": {"2200h"}}},
		{Filters: map[string][]string{"type": {"exec.cachemount"}, "id": {"abc"}, "parent": {"p1"}, "inuse": nil}},
		{All: true, MaxUsedSpace: "1KB", MinFreeSpace: "512"},
	}}, t.TempDir())
	assert.NilError(t, err)
	assert.Assert(t, is.Len(p, 3))
	assert.Check(t, is.DeepEqual(p[0], client.PruneInfo{KeepDuration: 2200 * time.Hour, ReservedSpace: 10 * gb}))
	assert.Check(t, is.DeepEqual(p[1], client.PruneInfo{Filter: []string{"id~=abc,inuse,parents==p1,type==exec.cachemount"}, ReservedSpace: 5 * gb}), "a rule without sizes takes the defaults")
	assert.Check(t, is.DeepEqual(p[2], client.PruneInfo{All: true, MaxUsedSpace: 1024, MinFreeSpace: 512}), "sizes are bytes with binary units, as dockerd's")

	_, err = GCPolicy(GCConfig{Policy: []GCRule{{ReservedSpace: "lots"}}}, t.TempDir())
	assert.Check(t, is.ErrorContains(err, `builder.gc.policy[0].ReservedSpace: invalid size "lots"`))
}

func TestPruneInfoFilters(t *testing.T) {
	pi, err := pruneInfo(true, map[string][]string{"until": {"24h"}, "description": {"x"}, "shared": {}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(pi, client.PruneInfo{All: true, KeepDuration: 24 * time.Hour, Filter: []string{"description==x,shared"}}))

	pi, err = pruneInfo(false, map[string][]string{"unused-for": {time.Now().Add(-time.Hour).Format(time.RFC3339)}})
	assert.NilError(t, err)
	assert.Check(t, pi.KeepDuration > 59*time.Minute && pi.KeepDuration < 61*time.Minute, "a timestamp is the time since then: %v", pi.KeepDuration)

	for _, tc := range []struct {
		f   map[string][]string
		err string
	}{
		{map[string][]string{"until": {"1h"}, "unused-for": {"2h"}}, `conflicting filters "until" and "unused-for"`},
		{map[string][]string{"until": {"1h", "2h"}}, "filters expect only one value"},
		{map[string][]string{"type": {"a", "b"}}, "filters expect only one value"},
		{map[string][]string{"until": {"tomorrow"}}, `"until" filter expects a duration (e.g., '24h') or a timestamp, got "tomorrow"`},
	} {
		_, err := pruneInfo(false, tc.f)
		assert.Check(t, is.ErrorContains(err, tc.err))
	}
}
