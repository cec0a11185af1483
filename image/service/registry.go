package service

import (
	"context"
	"fmt"
	"strconv"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/containerd/errdefs"
)

// DistributionInspect is GET /distribution/{name}/json: what name (tag "latest" when it has neither tag nor
// digest) points at in its registry, asked with the client's credentials.
func (s *Service) DistributionInspect(ctx context.Context, name string, auth *imagetypes.AuthConfig) (*imagetypes.DistributionInspect, error) {
	ref, err := image.ParseTagged(name)
	if err != nil {
		return nil, err
	}
	return s.dist.Inspect(ctx, ref, auth)
}

// DefaultSearchLimit is dockerd's number of search results when the client gives none.
const DefaultSearchLimit = 25

var acceptedSearchFilters = map[string]bool{"is-automated": true, "is-official": true, "stars": true}

// SearchImages is GET /images/search: the registry's v1 search for opts.Term, filtered by stars,
// is-official and is-automated as dockerd filters. Options are checked before the registry is asked.
func (s *Service) SearchImages(ctx context.Context, opts imagetypes.SearchOptions, auth *imagetypes.AuthConfig) ([]imagetypes.SearchResult, error) {
	if opts.Limit < 1 || opts.Limit > 100 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Limit %d is outside the range of [1, 100]", opts.Limit))
	}
	f := opts.Filters
	if err := f.Validate(acceptedSearchFilters); err != nil {
		return nil, err
	}
	automated, err := f.GetBoolOrDefault("is-automated", false)
	if err != nil {
		return nil, err
	}
	official, err := f.GetBoolOrDefault("is-official", false)
	if err != nil {
		return nil, err
	}
	minStars := 0
	for _, v := range f.Get("stars") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'stars=%s'", v))
		}
		minStars = max(minStars, n)
	}
	results, err := s.dist.Search(ctx, opts.Term, opts.Limit, auth)
	if err != nil {
		return nil, err
	}
	out := []imagetypes.SearchResult{}
	for _, r := range results {
		if f.Contains("is-automated") && r.IsAutomated != automated ||
			f.Contains("is-official") && r.IsOfficial != official ||
			r.StarCount < minStars {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}
