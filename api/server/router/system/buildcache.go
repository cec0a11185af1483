package system

import (
	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/berthd/berthd/api/types/system"
	"github.com/berthd/berthd/api/types/versions"
)

// BuilderVersioner is implemented by a Backend that knows the default builder /_ping advertises in its
// Builder-Version header ("2": BuildKit, "1": classic).
type BuilderVersioner interface {
	BuilderVersion() string
}

// adaptBuildCache shapes /system/df's BuildCache rows for the API version: before 1.42 each row has the
// single Parent and the body the BuilderSize total; from 1.42 rows have " Parents" and no total.
func adaptBuildCache(du *system.DiskUsage, version string) {
	old := version != "" && versions.LessThan(version, "1.42")
	var total int64
	for i, row := range du.BuildCache {
		c, ok := row.(buildtypes.CacheRecord)
		if !ok {
			continue
		}
		total += c.Size
		if old {
			if len(c.Parents) > 0 {
				c.Parent = c.Parents[0]
			}
			c.Parents = nil
		} else {
			c.Parent = ""
		}
		du.BuildCache[i] = c
	}
	du.BuilderSize = 0
	if old {
		du.BuilderSize = total
	}
}
