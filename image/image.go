// Package image owns berthd's image model: the Docker/OCI image config as dockerd reads it, what a
// container needs from an image (RunConfig), reference normalization, and the Dockerfile-instruction subset
// `docker import -c` accepts. It is pure: no containerd, no I/O; image/store and image/service build on it.
package image

import (
	"encoding/json"
	"strings"
	"time"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

// ID is an image's identity as dockerd shows it: the digest of its config blob.
type ID = digest.Digest

// RootFS is the config's list of layer diff IDs.
type RootFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diff_ids,omitempty"`
}

// History is one entry of the config's history (one per Dockerfile step; empty layers included).
type History struct {
	Created    *time.Time `json:"created,omitempty"`
	Author     string     `json:"author,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer,omitempty"`
}

// Config is an image config blob, Docker's superset of the OCI one (docker_version, container_config...).
type Config struct {
	Parent          string                      `json:"parent,omitempty"`
	Comment         string                      `json:"comment,omitempty"`
	Created         *time.Time                  `json:"created,omitempty"`
	Container       string                      `json:"container,omitempty"`
	ContainerConfig *imagetypes.ContainerConfig `json:"container_config,omitempty"`
	DockerVersion   string                      `json:"docker_version,omitempty"`
	Author          string                      `json:"author,omitempty"`
	Config          *imagetypes.ContainerConfig `json:"config,omitempty"`
	Architecture    string                      `json:"architecture,omitempty"`
	Variant         string                      `json:"variant,omitempty"`
	OS              string                      `json:"os,omitempty"`
	OSVersion       string                      `json:"os.version,omitempty"`
	RootFS          RootFS                      `json:"rootfs"`
	History         []History                   `json:"history,omitempty"`
}

// ParseConfig decodes a config blob. A config that does not decode is an invalid argument: it came from an
// archive or a registry, not from us.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid image config: " + err.Error())
	}
	if c.RootFS.Type != "" && c.RootFS.Type != "layers" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid image config: unsupported rootfs type " + c.RootFS.Type)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid image config: bad diff ID " + string(d))
		}
	}
	return &c, nil
}

// ChainID is the identity of the image's top layer including all below it; it names the image's committed
// snapshot, the parent of a container's RW layer. Empty for an image without layers.
func (c *Config) ChainID() digest.Digest {
	if len(c.RootFS.DiffIDs) == 0 {
		return ""
	}
	return identity.ChainID(c.RootFS.DiffIDs)
}

// Labels are the image's labels (never nil is not promised).
func (c *Config) Labels() map[string]string {
	if c.Config == nil {
		return nil
	}
	return c.Config.Labels
}

// RunConfig is what a container takes from its image: the defaults dockerd merges into a container's config,
// and where its RW layer goes (a snapshot of Snapshotter whose parent is ChainID).
type RunConfig struct {
	ID           ID
	Env          []string
	Cmd          []string
	Entrypoint   []string
	WorkingDir   string
	User         string
	Volumes      map[string]struct{}
	ExposedPorts map[string]struct{}
	Labels       map[string]string
	StopSignal   string
	Healthcheck  *imagetypes.HealthConfig
	Shell        []string
	OnBuild      []string
	ArgsEscaped  bool
	// ChainID is the parent snapshot of the container's RW layer ("" for an image with no layers).
	ChainID     digest.Digest
	Snapshotter string
	OS          string
	Arch        string
}

// RunConfigOf extracts the container defaults from a config.
func RunConfigOf(id ID, c *Config, snapshotter string) *RunConfig {
	rc := &RunConfig{ID: id, ChainID: c.ChainID(), Snapshotter: snapshotter, OS: c.OS, Arch: c.Architecture}
	if cc := c.Config; cc != nil {
		rc.Env, rc.Cmd, rc.Entrypoint = cc.Env, cc.Cmd, cc.Entrypoint
		rc.WorkingDir, rc.User = cc.WorkingDir, cc.User
		rc.Volumes, rc.ExposedPorts, rc.Labels = cc.Volumes, cc.ExposedPorts, cc.Labels
		rc.StopSignal, rc.Healthcheck, rc.Shell = cc.StopSignal, cc.Healthcheck, cc.Shell
		rc.OnBuild, rc.ArgsEscaped = cc.OnBuild, cc.ArgsEscaped
	}
	return rc
}

// ShortID is the 12-hex form dockerd prints in conflicts.
func ShortID(id ID) string {
	s := id.Encoded()
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// IsHexPrefix reports whether s may be a (short) image ID, with or without "sha256:".
func IsHexPrefix(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
