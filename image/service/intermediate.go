package service

import (
	"context"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image/store"
)

// hideIntermediate drops, as dockerd does without `all`, the untagged images that are another image's
// parent: the classic builder's intermediate steps.
func hideIntermediate(all []*store.Image, keep []listed) []listed {
	parents := map[string]bool{}
	for _, img := range all {
		if img.Config != nil && img.Config.Parent != "" {
			parents[img.Config.Parent] = true
		}
	}
	if len(parents) == 0 {
		return keep
	}
	out := keep[:0:0]
	for _, l := range keep {
		if img := l.img; parents[img.ID.String()] && len(img.RepoTags()) == 0 && len(img.RepoDigests()) == 0 {
			continue
		}
		out = append(out, l)
	}
	return out
}

// labelParents names, in a history listing (newest first, one row per entry of img's history), the rows
// of img's local parent chain with their image IDs and tags, as dockerd's history does for locally
// built images; rows of layers that came from elsewhere stay "<missing>".
func (s *Service) labelParents(ctx context.Context, img *store.Image, rows []*imagetypes.HistoryResponseItem) {
	if img.Config == nil || img.Config.Parent == "" {
		return
	}
	imgs, err := s.store.List(ctx)
	if err != nil {
		return
	}
	byID := map[string]*store.Image{}
	for _, i := range imgs {
		byID[i.ID.String()] = i
	}
	seen := map[string]bool{}
	for p := byID[img.Config.Parent]; p != nil && !seen[p.ID.String()]; p = byID[p.Config.Parent] {
		seen[p.ID.String()] = true
		n := len(p.Config.History)
		if n == 0 || n > len(rows) {
			return
		}
		row := rows[len(rows)-n]
		row.ID, row.Tags = p.ID.String(), p.RepoTags()
		if p.Config.Parent == "" {
			return
		}
	}
}
