package daemon

import (
	"github.com/berthd/berthd/daemon/events"
	"github.com/berthd/berthd/daemon/system"
)

// What cmd/berthd needs from below the composition root, so that main imports only daemon, daemon/config
// and api/server/... (hack/validate): build facts, the event filter keys the system router accepts, and
// (daemon/security.go) the hand-over of the authorization chain that main builds with the API server.

// Version is the engine version and commit berthd was built as (-ldflags on daemon/system).
func Version() (version, commit string) { return system.Version, system.GitCommit }

// EventFilters are the filter keys GET /events understands.
func EventFilters() map[string]bool { return events.AcceptedFilters }
