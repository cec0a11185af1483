package system

import (
	"encoding/json"
	"testing"

	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/berthd/berthd/api/types/system"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestAdaptBuildCache(t *testing.T) {
	rows := func() *system.DiskUsage {
		return &system.DiskUsage{BuildCache: []any{
			buildtypes.CacheRecord{ID: "a", Parents: []string{"p1", "p2"}, Type: "regular", Size: 10},
			buildtypes.CacheRecord{ID: "b", Type: "exec.cachemount", Size: 5},
		}}
	}
	du := rows()
	adaptBuildCache(du, "1.41")
	b, err := json.Marshal(du)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(b), `"ID":"a","Parent":"p1","Type":"regular"`))
	assert.Check(t, !contains(string(b), `" Parents"`), string(b))
	assert.Check(t, is.Contains(string(b), `"BuilderSize":15`))

	du = rows()
	adaptBuildCache(du, "1.42")
	b, err = json.Marshal(du)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(b), `"ID":"a"," Parents":["p1","p2"],"Type":"regular"`))
	assert.Check(t, !contains(string(b), `"Parent":`), string(b))
	assert.Check(t, !contains(string(b), `BuilderSize`), string(b))
}

func contains(s, sub string) bool { return is.Contains(s, sub)().Success() }
