// Package build holds the wire and option types of POST /build and POST /build/prune.
package build

import "github.com/berthd/berthd/api/types/container"

// Options are POST /build's query parameters, decoded by the router.
type Options struct {
	Tags        []string
	Dockerfile  string
	BuildArgs   map[string]*string
	Labels      map[string]string
	Target      string
	NoCache     bool
	Quiet       bool
	Remove      bool
	ForceRemove bool
	NetworkMode string
	Platform    string
	Pull        bool
	// Remote is a context URL (git or tarball); the body is then empty.
	Remote string
	// ExtraHosts, ShmSize, Memory, ... belong to the intermediate containers' HostConfig.
	ExtraHosts   []string
	ShmSize      int64
	Memory       int64
	MemorySwap   int64
	CPUShares    int64
	CPUSetCPUs   string
	CPUSetMems   string
	CPUPeriod    int64
	CPUQuota     int64
	CgroupParent string
	Ulimits      []*container.Ulimit
}

// CachePruneReport is POST /build/prune's answer.
type CachePruneReport struct {
	CachesDeleted  []string `json:"CachesDeleted"`
	SpaceReclaimed uint64   `json:"SpaceReclaimed"`
}
