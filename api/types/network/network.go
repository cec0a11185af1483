// Package network holds the wire structs of the Engine API's /networks endpoints. Stdlib only.
package network

import "github.com/berthd/berthd/api/types/container"

// Inspect is one network as GET /networks and GET /networks/{id} answer it (dockerd's field order).
type Inspect struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    string                      `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv4 bool                        `json:"EnableIPv4"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       IPAM                        `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	ConfigFrom ConfigReference             `json:"ConfigFrom"`
	ConfigOnly bool                        `json:"ConfigOnly"`
	Containers map[string]EndpointResource `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
}

// IPAM is a network's address management.
type IPAM struct {
	Driver  string            `json:"Driver"`
	Options map[string]string `json:"Options"`
	Config  []IPAMConfig      `json:"Config"`
}

// IPAMConfig is one address pool.
type IPAMConfig struct {
	Subnet     string            `json:"Subnet,omitempty"`
	IPRange    string            `json:"IPRange,omitempty"`
	Gateway    string            `json:"Gateway,omitempty"`
	AuxAddress map[string]string `json:"AuxiliaryAddresses,omitempty"`
}

// ConfigReference names a config-only network.
type ConfigReference struct {
	Network string `json:"Network"`
}

// EndpointResource is one container on a network.
type EndpointResource struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// CreateRequest is the body of POST /networks/create.
type CreateRequest struct {
	Name           string            `json:"Name"`
	CheckDuplicate *bool             `json:"CheckDuplicate,omitempty"`
	Driver         string            `json:"Driver"`
	Scope          string            `json:"Scope"`
	EnableIPv4     *bool             `json:"EnableIPv4,omitempty"`
	EnableIPv6     *bool             `json:"EnableIPv6,omitempty"`
	IPAM           *IPAM             `json:"IPAM"`
	Internal       bool              `json:"Internal"`
	Attachable     bool              `json:"Attachable"`
	Ingress        bool              `json:"Ingress"`
	ConfigOnly     bool              `json:"ConfigOnly"`
	ConfigFrom     *ConfigReference  `json:"ConfigFrom"`
	Options        map[string]string `json:"Options"`
	Labels         map[string]string `json:"Labels"`
}

// CreateResponse answers POST /networks/create.
type CreateResponse struct {
	ID      string `json:"Id"`
	Warning string `json:"Warning"`
}

// ConnectRequest is the body of POST /networks/{id}/connect.
type ConnectRequest struct {
	Container      string                      `json:"Container"`
	EndpointConfig *container.EndpointSettings `json:"EndpointConfig,omitempty"`
}

// DisconnectRequest is the body of POST /networks/{id}/disconnect.
type DisconnectRequest struct {
	Container string `json:"Container"`
	Force     bool   `json:"Force"`
}

// PruneReport answers POST /networks/prune.
type PruneReport struct {
	NetworksDeleted []string `json:"NetworksDeleted"`
}
