package events

import (
	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
)

// AcceptedFilters are the keys GET /events understands.
var AcceptedFilters = map[string]bool{
	"config": true, "container": true, "daemon": true, "event": true, "image": true, "label": true,
	"network": true, "node": true, "plugin": true, "scope": true, "secret": true, "service": true,
	"type": true, "volume": true,
}

// Match reports whether m passes the filters, with dockerd's semantics: each key must match when given;
// object keys match the actor ID or its `name` attribute, exactly or by prefix; `label` matches actor attributes.
func Match(f filters.Args, m eventtypes.Message) bool {
	if !f.ExactMatch("type", string(m.Type)) || !f.ExactMatch("event", m.Action) {
		return false
	}
	if !f.ExactMatch("scope", m.Scope) {
		return false
	}
	if !f.MatchKVList("label", m.Actor.Attributes) {
		return false
	}
	objectKeys := map[string]eventtypes.Type{
		"container": eventtypes.ContainerEventType, "image": eventtypes.ImageEventType,
		"volume": eventtypes.VolumeEventType, "plugin": eventtypes.PluginEventType,
		"network": eventtypes.NetworkEventType, "daemon": eventtypes.DaemonEventType,
	}
	for key, typ := range objectKeys {
		if !f.Contains(key) {
			continue
		}
		if m.Type != typ {
			return false
		}
		if !f.FuzzyMatch(key, m.Actor.ID) && !f.FuzzyMatch(key, m.Actor.Attributes["name"]) {
			return false
		}
	}
	return true
}
