// Package volume owns the wire form of the Engine API's volume endpoints. Standard library only.
package volume

// Volume is one volume as the API shows it.
type Volume struct {
	CreatedAt  string            `json:"CreatedAt,omitempty"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
	Status     map[string]any    `json:"Status,omitempty"`
	UsageData  *UsageData        `json:"UsageData,omitempty"`
}

// UsageData is filled by /system/df only; -1 means "not computed".
type UsageData struct {
	RefCount int64 `json:"RefCount"`
	Size     int64 `json:"Size"`
}

// CreateOptions is the body of POST /volumes/create.
type CreateOptions struct {
	Driver     string            `json:"Driver,omitempty"`
	DriverOpts map[string]string `json:"DriverOpts,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
	Name       string            `json:"Name,omitempty"`
}

// ListResponse is the body of GET /volumes.
type ListResponse struct {
	Volumes  []*Volume `json:"Volumes"`
	Warnings []string  `json:"Warnings"`
}

// PruneReport is the body of POST /volumes/prune.
type PruneReport struct {
	VolumesDeleted []string `json:"VolumesDeleted"`
	SpaceReclaimed uint64   `json:"SpaceReclaimed"`
}

// AnonymousLabel marks volumes created without a name; prune at API >= 1.42 removes only these by default.
const AnonymousLabel = "com.docker.volume.anonymous"
