package image

import "github.com/berthd/berthd/api/types/filters"

// DistributionInspect is GET /distribution/{name}/json: what a registry says a reference points at
// (`docker manifest inspect`, buildx).
type DistributionInspect struct {
	// Descriptor is the manifest or index the reference resolves to.
	Descriptor Descriptor
	// Platforms are the index's platforms, or the one of a single manifest (from its config).
	Platforms []Platform
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	URLs        []string          `json:"urls,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is an OCI platform.
type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// SearchResult is one entry of GET /images/search.
type SearchResult struct {
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
	Name        string `json:"name"`
	IsAutomated bool   `json:"is_automated"`
	Description string `json:"description"`
}

// SearchOptions are GET /images/search's parameters, decoded.
type SearchOptions struct {
	Term    string
	Limit   int
	Filters filters.Args
}
