// Package build holds the wire and option types of POST /build and POST /build/prune.
package build

import (
	"time"

	"github.com/berthd/berthd/api/types/container"
)

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

	// Version is "1" (classic) or "2" (BuildKit); the fields below are BuildKit's only.
	Version string
	// SessionID is the client's BuildKit session (files, secrets, auth are read through it).
	SessionID string
	// BuildID names the build for POST /build/cancel.
	BuildID string
	// CacheFrom are image references used as cache sources.
	CacheFrom []string
	// Outputs is where the result goes; empty means the daemon's image store.
	Outputs []Output
}

// Output is one entry of POST /build's outputs parameter.
type Output struct {
	Type  string
	Attrs map[string]string
}

// PruneOptions are POST /build/prune's parameters. Filters are already validated; their values by key.
type PruneOptions struct {
	All           bool
	ReservedSpace int64
	MaxUsedSpace  int64
	MinFreeSpace  int64
	Filters       map[string][]string
}

// CacheRecord is one row of /system/df's BuildCache. Parent is filled for API < 1.42 and Parents
// after; the latter's JSON key really starts with a space, as dockerd's does.
type CacheRecord struct {
	ID          string
	Parent      string   `json:"Parent,omitempty"`
	Parents     []string `json:" Parents,omitempty"`
	Type        string
	Description string
	InUse       bool
	Shared      bool
	Size        int64
	CreatedAt   time.Time
	LastUsedAt  *time.Time
	UsageCount  int
}

// CachePruneReport is POST /build/prune's answer.
type CachePruneReport struct {
	CachesDeleted  []string `json:"CachesDeleted"`
	SpaceReclaimed uint64   `json:"SpaceReclaimed"`
}
