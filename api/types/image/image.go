// Package image owns the wire form of the Engine API's image endpoints (/images/...), the JSON-message
// progress stream they share with plugin pulls, and the registry credentials sent in X-Registry-Auth.
// Standard library only.
package image

import "github.com/berthd/berthd/api/types/filters"

// Summary is one entry of GET /images/json (and of the image rows of /system/df).
type Summary struct {
	ID          string `json:"Id"`
	ParentID    string `json:"ParentId"`
	RepoTags    []string
	RepoDigests []string
	Created     int64
	Size        int64
	SharedSize  int64
	VirtualSize int64 `json:",omitempty"`
	Labels      map[string]string
	Containers  int64
}

// HealthConfig is the image's HEALTHCHECK.
type HealthConfig struct {
	Test          []string `json:",omitempty"`
	Interval      int64    `json:",omitempty"`
	Timeout       int64    `json:",omitempty"`
	StartPeriod   int64    `json:",omitempty"`
	StartInterval int64    `json:",omitempty"`
	Retries       int      `json:",omitempty"`
}

// ContainerConfig is the container configuration embedded in an image config ("config" and
// "container_config"), with the same JSON shape as a container's Config.
type ContainerConfig struct {
	Hostname        string              `json:",omitempty"`
	Domainname      string              `json:",omitempty"`
	User            string              `json:",omitempty"`
	AttachStdin     bool                `json:",omitempty"`
	AttachStdout    bool                `json:",omitempty"`
	AttachStderr    bool                `json:",omitempty"`
	ExposedPorts    map[string]struct{} `json:",omitempty"`
	Tty             bool                `json:",omitempty"`
	OpenStdin       bool                `json:",omitempty"`
	StdinOnce       bool                `json:",omitempty"`
	Env             []string            `json:",omitempty"`
	Cmd             []string            `json:",omitempty"`
	Healthcheck     *HealthConfig       `json:",omitempty"`
	ArgsEscaped     bool                `json:",omitempty"`
	Image           string              `json:",omitempty"`
	Volumes         map[string]struct{} `json:",omitempty"`
	WorkingDir      string              `json:",omitempty"`
	Entrypoint      []string            `json:",omitempty"`
	NetworkDisabled bool                `json:",omitempty"`
	MacAddress      string              `json:",omitempty"`
	OnBuild         []string            `json:",omitempty"`
	Labels          map[string]string   `json:",omitempty"`
	StopSignal      string              `json:",omitempty"`
	StopTimeout     *int                `json:",omitempty"`
	Shell           []string            `json:",omitempty"`
}

// GraphDriverData names the storage behind an image.
type GraphDriverData struct {
	Name string
	Data map[string]string
}

// RootFS lists an image's layers by diff ID.
type RootFS struct {
	Type   string
	Layers []string `json:",omitempty"`
}

// Metadata is local, non-content information about an image.
type Metadata struct {
	LastTagTime string `json:",omitempty"`
}

// InspectResponse is the body of GET /images/{name}/json.
type InspectResponse struct {
	ID              string `json:"Id"`
	RepoTags        []string
	RepoDigests     []string
	Parent          string
	Comment         string
	Created         string           `json:",omitempty"`
	Container       string           `json:",omitempty"`
	ContainerConfig *ContainerConfig `json:",omitempty"`
	DockerVersion   string
	Author          string
	Config          *ContainerConfig
	Architecture    string
	Variant         string `json:",omitempty"`
	Os              string
	OsVersion       string `json:",omitempty"`
	Size            int64
	VirtualSize     int64 `json:",omitempty"`
	GraphDriver     GraphDriverData
	RootFS          RootFS
	Metadata        Metadata
}

// HistoryResponseItem is one entry of GET /images/{name}/history, newest first.
type HistoryResponseItem struct {
	ID        string `json:"Id"`
	Created   int64
	CreatedBy string
	Tags      []string
	Size      int64
	Comment   string
}

// DeleteResponse is one entry of DELETE /images/{name} and of a prune report.
type DeleteResponse struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// PruneReport is the body of POST /images/prune.
type PruneReport struct {
	ImagesDeleted  []DeleteResponse
	SpaceReclaimed uint64
}

// PushResult is the aux message that ends a push stream.
type PushResult struct {
	Tag    string
	Digest string
	Size   int
}

// AuthConfig is the registry credential a client sends base64url-encoded in X-Registry-Auth.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// ListOptions are GET /images/json's parameters, decoded.
type ListOptions struct {
	All        bool
	Filters    filters.Args
	SharedSize bool
	// ContainerCount fills Summary.Containers (otherwise -1).
	ContainerCount bool
}

// AuthResponse is the body of POST /auth (docker login).
type AuthResponse struct {
	Status        string
	IdentityToken string `json:",omitempty"`
}
