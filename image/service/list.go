package service

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/berthd/berthd/api/types/filters"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/image/store"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

// ListOptions are GET /images/json's parameters.
type ListOptions = imagetypes.ListOptions

var acceptedListFilters = map[string]bool{"dangling": true, "label": true, "before": true, "since": true, "reference": true, "until": true}

// Images lists images as `docker images` shows them.
func (s *Service) Images(ctx context.Context, opts ListOptions) ([]*imagetypes.Summary, error) {
	if err := opts.Filters.Validate(acceptedListFilters); err != nil {
		return nil, err
	}
	imgs, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	keep, err := s.filter(ctx, imgs, opts.Filters)
	if err != nil {
		return nil, err
	}
	if !opts.All {
		keep = hideIntermediate(imgs, keep)
	}
	out := make([]*imagetypes.Summary, 0, len(keep))
	var layerUse map[digest.Digest]int
	if opts.SharedSize {
		layerUse = chainUse(imgs)
	}
	for _, l := range keep {
		img := l.img
		sum := s.summary(ctx, img)
		if l.filtered {
			sum.RepoTags, sum.RepoDigests = l.tags, l.digests
			if sum.RepoTags == nil {
				sum.RepoTags = []string{}
			}
			if sum.RepoDigests == nil {
				sum.RepoDigests = []string{}
			}
		}
		if opts.ContainerCount {
			r, st := s.usedBy(ctx, img.ID)
			sum.Containers = int64(len(r) + len(st))
		}
		if opts.SharedSize {
			sizes := s.store.LayerSizes(ctx, img)
			var shared int64
			for i := range sizes {
				if layerUse[chainAt(img, i)] > 1 {
					shared += sizes[i]
				}
			}
			sum.SharedSize = shared
		}
		out = append(out, sum)
	}
	return out, nil
}

func chainAt(img *store.Image, i int) digest.Digest {
	return identity.ChainID(img.Config.RootFS.DiffIDs[:i+1])
}

func chainUse(imgs []*store.Image) map[digest.Digest]int {
	use := map[digest.Digest]int{}
	for _, img := range imgs {
		for i := range img.Config.RootFS.DiffIDs {
			use[chainAt(img, i)]++
		}
	}
	return use
}

func (s *Service) summary(ctx context.Context, img *store.Image) *imagetypes.Summary {
	tags, digests := img.RepoTags(), img.RepoDigests()
	if len(tags) == 0 && len(digests) == 0 {
		tags, digests = []string{"<none>:<none>"}, []string{"<none>@<none>"}
	}
	var created int64
	if img.Config.Created != nil {
		created = img.Config.Created.Unix()
	}
	labels := img.Config.Labels()
	if labels == nil {
		labels = map[string]string{}
	}
	return &imagetypes.Summary{
		ID: img.ID.String(), RepoTags: tags, RepoDigests: digests, Created: created,
		Size: s.store.Size(ctx, img), SharedSize: -1, Containers: -1, Labels: labels,
	}
}

// listed is an image the filters kept; with a reference filter, only the names that matched are shown.
type listed struct {
	img           *store.Image
	tags, digests []string
	filtered      bool
}

func (s *Service) filter(ctx context.Context, imgs []*store.Image, f filters.Args) ([]listed, error) {
	var (
		before, since time.Time
		hasBefore     bool
		hasSince      bool
	)
	for _, ref := range f.Get("before") {
		img, err := store.Find(imgs, ref)
		if err != nil {
			return nil, err
		}
		before, hasBefore = createdAt(img), true
	}
	for _, ref := range f.Get("since") {
		img, err := store.Find(imgs, ref)
		if err != nil {
			return nil, err
		}
		since, hasSince = createdAt(img), true
	}
	var until time.Time
	hasUntil := false
	for _, u := range f.Get("until") {
		t, err := parseTimestamp(u)
		if err != nil {
			return nil, err
		}
		until, hasUntil = t, true
	}
	danglingOnly, err := f.GetBoolOrDefault("dangling", false)
	if err != nil {
		return nil, err
	}
	hasDangling := f.Contains("dangling")
	var out []listed
	for _, img := range imgs {
		c := createdAt(img)
		if hasBefore && !c.Before(before) || hasSince && !c.After(since) || hasUntil && !c.Before(until) {
			continue
		}
		if hasDangling && danglingOnly == img.Named() {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", img.Config.Labels()) {
			continue
		}
		if f.Contains("reference") {
			tags, digests, err := matchReference(img, f.Get("reference"))
			if err != nil {
				return nil, err
			}
			if len(tags) == 0 && len(digests) == 0 {
				continue
			}
			out = append(out, listed{img: img, tags: tags, digests: digests, filtered: true})
			continue
		}
		out = append(out, listed{img: img})
	}
	return out, nil
}

// matchReference is dockerd's reference filter: the image's names matching any of patterns, split into
// tags and digests; an image none of whose names matches is left out.
func matchReference(img *store.Image, patterns []string) (tags, digests []string, err error) {
	for _, r := range img.Records {
		if store.IsDanglingName(r.Name) {
			continue
		}
		n, perr := reference.ParseNormalizedNamed(r.Name)
		if perr != nil {
			continue
		}
		found := false
		for _, p := range patterns {
			ok, err := image.MatchReference(p, n)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		if _, ok := n.(reference.Digested); ok {
			digests = append(digests, reference.FamiliarString(n))
		} else {
			tags = append(tags, reference.FamiliarString(n))
		}
	}
	sort.Strings(tags)
	sort.Strings(digests)
	return tags, digests, nil
}

func createdAt(img *store.Image) time.Time {
	if img.Config.Created != nil {
		return *img.Config.Created
	}
	return time.Time{}
}

// parseTimestamp reads an `until` filter: unix seconds (with fraction), RFC 3339 or a Go duration back
// from now.
func parseTimestamp(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	sec, frac, _ := strings.Cut(v, ".")
	var secs, nanos int64
	if _, err := parseInt(sec, &secs); err != nil {
		return time.Time{}, errdefs.ErrInvalidArgument.WithMessage("invalid timestamp " + v)
	}
	if frac != "" {
		for len(frac) < 9 {
			frac += "0"
		}
		if _, err := parseInt(frac[:9], &nanos); err != nil {
			return time.Time{}, errdefs.ErrInvalidArgument.WithMessage("invalid timestamp " + v)
		}
	}
	return time.Unix(secs, nanos), nil
}

func parseInt(s string, v *int64) (int64, error) {
	if s == "" {
		return 0, errdefs.ErrInvalidArgument
	}
	var n int64
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errdefs.ErrInvalidArgument
		}
		n = n*10 + int64(r-'0')
	}
	*v = n
	return n, nil
}

// ImageInspect is GET /images/{name}/json.
func (s *Service) ImageInspect(ctx context.Context, ref string) (*imagetypes.InspectResponse, error) {
	img, err := s.store.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	c := img.Config
	resp := &imagetypes.InspectResponse{
		ID: img.ID.String(), RepoTags: img.RepoTags(), RepoDigests: img.RepoDigests(), Comment: c.Comment,
		Container: c.Container, ContainerConfig: c.ContainerConfig, DockerVersion: c.DockerVersion,
		Author: c.Author, Config: c.Config, Architecture: c.Architecture, Variant: c.Variant, Os: c.OS,
		OsVersion: c.OSVersion, Size: s.store.Size(ctx, img), Parent: c.Parent,
		GraphDriver: imagetypes.GraphDriverData{Name: s.store.Snapshotter(), Data: nil},
		RootFS:      imagetypes.RootFS{Type: "layers"},
	}
	if resp.Config == nil {
		resp.Config = &imagetypes.ContainerConfig{}
	}
	if c.Created != nil {
		resp.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range c.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	if t := img.LastTagTime(); !t.IsZero() && img.Named() {
		resp.Metadata.LastTagTime = t.UTC().Format(time.RFC3339Nano)
	}
	return resp, nil
}

// ImageHistory is GET /images/{name}/history: newest step first, the top one carrying the ID and tags.
func (s *Service) ImageHistory(ctx context.Context, ref string) ([]*imagetypes.HistoryResponseItem, error) {
	img, err := s.store.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	sizes := s.store.LayerSizes(ctx, img)
	hist := img.Config.History
	if len(hist) == 0 {
		for range img.Config.RootFS.DiffIDs {
			hist = append(hist, image.History{Created: img.Config.Created})
		}
	}
	var out []*imagetypes.HistoryResponseItem
	layer := 0
	for _, h := range hist {
		item := &imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer {
			if layer < len(sizes) {
				item.Size = sizes[layer]
			}
			layer++
		}
		out = append(out, item)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = img.RepoTags()
	}
	s.labelParents(ctx, img, out)
	return out, nil
}

// DiskUsage is the image part of /system/df: every image with its container count, and the total size of
// all distinct layers.
func (s *Service) DiskUsage(ctx context.Context) (layersSize int64, summaries []*imagetypes.Summary, err error) {
	imgs, err := s.store.List(ctx)
	if err != nil {
		return 0, nil, err
	}
	seen := map[digest.Digest]bool{}
	use := chainUse(imgs)
	for _, img := range imgs {
		sum := s.summary(ctx, img)
		r, st := s.usedBy(ctx, img.ID)
		sum.Containers = int64(len(r) + len(st))
		sizes := s.store.LayerSizes(ctx, img)
		var shared int64
		for i, sz := range sizes {
			ch := chainAt(img, i)
			if use[ch] > 1 {
				shared += sz
			}
			if !seen[ch] {
				seen[ch] = true
				layersSize += sz
			}
		}
		sum.SharedSize = shared
		summaries = append(summaries, sum)
	}
	sort.SliceStable(summaries, func(i, j int) bool { return summaries[i].Created > summaries[j].Created })
	return layersSize, summaries, nil
}
