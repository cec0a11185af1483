// Package api owns the Engine API version constants shared by the server, the routers and the daemon.
// It imports nothing but the standard library.
package api

const (
	// DefaultVersion is the newest API version berthd speaks; unversioned paths are served at it.
	DefaultVersion = "1.45"
	// MinSupportedVersion is the oldest API version accepted, as dockerd 25+ does.
	MinSupportedVersion = "1.24"
)
