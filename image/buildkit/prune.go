package buildkit

import (
	"context"
	"sync"

	buildtypes "github.com/berthd/berthd/api/types/build"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/pkg/errors"
)

// DiskUsage lists BuildKit's cache records as /system/df's BuildCache rows (Parents set; the router fills
// Parent for older API versions).
func (b *BuildKit) DiskUsage(ctx context.Context) ([]buildtypes.CacheRecord, error) {
	if err := b.Ready(ctx); err != nil {
		return nil, err
	}
	resp, err := b.ctrl.DiskUsage(ctx, &controlapi.DiskUsageRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]buildtypes.CacheRecord, 0, len(resp.Record))
	for _, r := range resp.Record {
		out = append(out, cacheRecord(r))
	}
	return out, nil
}

func cacheRecord(r *controlapi.UsageRecord) buildtypes.CacheRecord {
	c := buildtypes.CacheRecord{
		ID:          r.ID,
		Parents:     r.Parents,
		Type:        r.RecordType,
		Description: r.Description,
		InUse:       r.InUse,
		Shared:      r.Shared,
		Size:        r.Size,
		UsageCount:  int(r.UsageCount),
	}
	if r.CreatedAt != nil {
		c.CreatedAt = r.CreatedAt.AsTime()
	}
	if r.LastUsedAt != nil {
		t := r.LastUsedAt.AsTime()
		c.LastUsedAt = &t
	}
	return c
}

// Prune removes BuildKit cache records as POST /build/prune asks: all or only unused dangling ones, those
// matching the filters (already validated by the router), down to the size limits.
func (b *BuildKit) Prune(ctx context.Context, opts buildtypes.PruneOptions) (buildtypes.CachePruneReport, error) {
	rep := buildtypes.CachePruneReport{CachesDeleted: []string{}}
	if err := b.Ready(ctx); err != nil {
		return rep, err
	}
	pi, err := pruneInfo(opts.All, opts.Filters)
	if err != nil {
		return rep, err
	}
	req := &controlapi.PruneRequest{
		Filter:        pi.Filter,
		All:           pi.All,
		KeepDuration:  int64(pi.KeepDuration),
		ReservedSpace: opts.ReservedSpace,
		MaxUsedSpace:  opts.MaxUsedSpace,
		MinFreeSpace:  opts.MinFreeSpace,
	}
	var mu sync.Mutex
	err = b.ctrl.Prune(req, &pruneStream{localStream: localStream{ctx}, send: func(r *controlapi.UsageRecord) error {
		mu.Lock()
		defer mu.Unlock()
		rep.CachesDeleted = append(rep.CachesDeleted, r.ID)
		rep.SpaceReclaimed += uint64(r.Size)
		return nil
	}})
	return rep, err
}

// pruneStream is Control.Prune's server stream, in process.
type pruneStream struct {
	localStream
	send func(*controlapi.UsageRecord) error
}

func (s *pruneStream) Send(r *controlapi.UsageRecord) error { return s.send(r) }

func (s *pruneStream) SendMsg(m any) error {
	r, ok := m.(*controlapi.UsageRecord)
	if !ok {
		return errors.Errorf("unexpected prune message %T", m)
	}
	return s.send(r)
}
