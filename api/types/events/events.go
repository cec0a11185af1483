// Package events owns the wire form of Engine API events (GET /events). Standard library only.
package events

// Type is the kind of object an event is about.
type Type string

// Event types, as dockerd names them.
const (
	ContainerEventType Type = "container"
	DaemonEventType    Type = "daemon"
	ImageEventType     Type = "image"
	NetworkEventType   Type = "network"
	PluginEventType    Type = "plugin"
	VolumeEventType    Type = "volume"
)

// Actor is the object an event is about.
type Actor struct {
	ID         string
	Attributes map[string]string
}

// Message is one event as streamed to clients. Status/ID/From are the legacy fields dockerd still fills
// for container and image events.
type Message struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`

	Type   Type
	Action string
	Actor  Actor
	Scope  string `json:"scope,omitempty"`

	Time     int64 `json:"time,omitempty"`
	TimeNano int64 `json:"timeNano,omitempty"`
}
