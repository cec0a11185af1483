package service

import (
	"context"
	"fmt"

	"github.com/berthd/berthd/api/types/filters"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/image/store"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

// TagImage is POST /images/{name}/tag: point repo:tag at the image name resolves to.
func (s *Service) TagImage(ctx context.Context, name, repo, tag string) error {
	ref, err := image.WithTag(repo, tag)
	if err != nil {
		return err
	}
	img, err := s.store.Get(ctx, name)
	if err != nil {
		return err
	}
	prev, err := s.store.SetName(ctx, ref.String(), img.Manifest)
	if err != nil {
		return err
	}
	if prev != "" {
		s.logEvent("untag", prev.String(), image.Familiar(ref), nil)
	}
	s.logEvent("tag", img.ID.String(), image.Familiar(ref), img)
	return nil
}

const (
	conflictHard = iota + 1
	conflictSoft
)

func conflict(id image.ID, hard bool, msg string) error {
	force := "must be forced"
	if hard {
		force = "cannot be forced"
	}
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (%s) - %s", image.ShortID(id), force, msg))
}

// isIDRef reports whether ref names the image by its ID (or a prefix of it) rather than by a name.
func isIDRef(id image.ID, ref string) bool {
	if d, err := digest.Parse(ref); err == nil {
		return d == id
	}
	if !image.IsHexPrefix(ref) {
		return false
	}
	p := ref
	if len(p) > 7 && p[:7] == "sha256:" {
		p = p[7:]
	}
	return len(p) <= len(id.Encoded()) && id.Encoded()[:len(p)] == p
}

// ImageDelete is DELETE /images/{name}, with dockerd's rules: removing a name only untags while other
// names remain; the image itself goes with its last name, or by ID when it has at most one tag (force for
// more). A running container's image cannot be deleted; a stopped container's only with force.
func (s *Service) ImageDelete(ctx context.Context, ref string, force, prune bool) ([]imagetypes.DeleteResponse, error) {
	imgs, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	img, err := store.Find(imgs, ref)
	if err != nil {
		return nil, err
	}
	var records []imagetypes.DeleteResponse
	running, stopped := s.usedBy(ctx, img.ID)
	named := namedRefs(img)

	if !isIDRef(img.ID, ref) {
		parsed, err := image.ParseNamed(ref)
		if err != nil {
			return nil, err
		}
		parsed = reference.TagNameOnly(parsed)
		if !force && len(named) == 1 {
			if c := first(running, stopped); c != "" {
				return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, shortCID(c), image.ShortID(img.ID)))
			}
		}
		inUse := len(running)+len(stopped) > 0
		if err := s.store.RemoveName(ctx, parsed.String(), inUse); err != nil {
			return nil, err
		}
		records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(parsed)})
		s.logEvent("untag", img.ID.String(), reference.FamiliarString(parsed), img)
		remaining := without(named, parsed.String())
		// A tag's repository keeps no digest references once its last tag is gone.
		if _, isDigest := parsed.(reference.Digested); !isDigest && !hasTagIn(remaining, parsed.Name()) {
			var rest []reference.Named
			for _, n := range remaining {
				if _, d := n.(reference.Digested); d && n.Name() == parsed.Name() {
					if err := s.store.RemoveName(ctx, n.String(), inUse); err != nil {
						return records, err
					}
					records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(n)})
					continue
				}
				rest = append(rest, n)
			}
			remaining = rest
		}
		if len(remaining) > 0 || inUse {
			// Other names remain, or a container keeps the now-dangling image.
			return records, nil
		}
	} else {
		if len(running) > 0 {
			return nil, conflict(img.ID, true, "image is being used by running container "+shortCID(running[0]))
		}
		if !force {
			if len(stopped) > 0 {
				return nil, conflict(img.ID, false, "image is being used by stopped container "+shortCID(stopped[0]))
			}
			if !singleReference(named) {
				return nil, conflict(img.ID, false, "image is referenced in multiple repositories")
			}
		}
		for _, n := range named {
			records = append(records, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(n)})
			s.logEvent("untag", img.ID.String(), reference.FamiliarString(n), img)
		}
	}
	if err := s.store.Delete(ctx, img, false); err != nil {
		return records, err
	}
	s.logEvent("delete", img.ID.String(), "", img)
	records = append(records, imagetypes.DeleteResponse{Deleted: img.ID.String()})
	return records, nil
}

func first(a, b []string) string {
	if len(a) > 0 {
		return a[0]
	}
	if len(b) > 0 {
		return b[0]
	}
	return ""
}

func shortCID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func namedRefs(img *store.Image) []reference.Named {
	var out []reference.Named
	for _, r := range img.Records {
		if store.IsDanglingName(r.Name) {
			continue
		}
		if n, err := reference.ParseNormalizedNamed(r.Name); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func without(ns []reference.Named, name string) []reference.Named {
	var out []reference.Named
	for _, n := range ns {
		if n.String() != name {
			out = append(out, n)
		}
	}
	return out
}

func hasTagIn(ns []reference.Named, repo string) bool {
	for _, n := range ns {
		if _, d := n.(reference.Digested); !d && n.Name() == repo {
			return true
		}
	}
	return false
}

// singleReference: at most one tag, and every reference in one repository.
func singleReference(ns []reference.Named) bool {
	tags, repo := 0, ""
	for _, n := range ns {
		if _, d := n.(reference.Digested); !d {
			tags++
		}
		if repo != "" && n.Name() != repo {
			return false
		}
		repo = n.Name()
	}
	return tags <= 1
}

var acceptedPruneFilters = map[string]bool{"dangling": true, "label": true, "label!": true, "until": true}

// ImagesPrune is POST /images/prune: dangling images (all unused ones with dangling=false) that no
// container uses, filtered by until and label; space is what the deleted layers no longer shared with a
// remaining image took.
func (s *Service) ImagesPrune(ctx context.Context, f filters.Args) (*imagetypes.PruneReport, error) {
	if err := f.Validate(acceptedPruneFilters); err != nil {
		return nil, err
	}
	danglingOnly, err := f.GetBoolOrDefault("dangling", true)
	if err != nil {
		return nil, err
	}
	imgs, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	lf := filters.NewArgs()
	for _, u := range f.Get("until") {
		lf.Add("until", u)
	}
	cands, err := s.filter(ctx, imgs, lf)
	if err != nil {
		return nil, err
	}
	report := &imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	var deleted []*store.Image
	for _, l := range cands {
		img := l.img
		if danglingOnly && img.Named() {
			continue
		}
		labels := img.Config.Labels()
		if f.Contains("label") && !f.MatchKVList("label", labels) {
			continue
		}
		if f.Contains("label!") && f.MatchKVList("label!", labels) {
			continue
		}
		if r, st := s.usedBy(ctx, img.ID); len(r)+len(st) > 0 {
			continue
		}
		sizes := s.store.LayerSizes(ctx, img)
		if err := s.store.Delete(ctx, img, false); err != nil {
			return report, err
		}
		for _, n := range namedRefs(img) {
			report.ImagesDeleted = append(report.ImagesDeleted, imagetypes.DeleteResponse{Untagged: reference.FamiliarString(n)})
		}
		report.ImagesDeleted = append(report.ImagesDeleted, imagetypes.DeleteResponse{Deleted: img.ID.String()})
		s.logEvent("delete", img.ID.String(), "", img)
		deleted = append(deleted, img)
		img.LayerSizesCache = sizes
	}
	if len(deleted) == 0 {
		return report, nil
	}
	remaining := map[digest.Digest]bool{}
	for _, img := range imgs {
		if !contains(deleted, img) {
			for i := range img.Config.RootFS.DiffIDs {
				remaining[identity.ChainID(img.Config.RootFS.DiffIDs[:i+1])] = true
			}
		}
	}
	counted := map[digest.Digest]bool{}
	for _, img := range deleted {
		for i, sz := range img.LayerSizesCache {
			ch := identity.ChainID(img.Config.RootFS.DiffIDs[:i+1])
			if !remaining[ch] && !counted[ch] {
				counted[ch] = true
				report.SpaceReclaimed += uint64(sz)
			}
		}
	}
	s.store.CollectGarbage(ctx)
	return report, nil
}

func contains(list []*store.Image, img *store.Image) bool {
	for _, i := range list {
		if i == img {
			return true
		}
	}
	return false
}
