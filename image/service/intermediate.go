package service

import "github.com/berthd/berthd/image/store"

// hideIntermediate drops, as dockerd does without `all`, the untagged images that are another image's
// parent: the classic builder's intermediate steps.
func hideIntermediate(all, keep []*store.Image) []*store.Image {
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
	for _, img := range keep {
		if parents[img.ID.String()] && len(img.RepoTags()) == 0 && len(img.RepoDigests()) == 0 {
			continue
		}
		out = append(out, img)
	}
	return out
}
