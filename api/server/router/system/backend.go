package system

import (
	"context"
	"time"

	"github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/system"
)

// Backend is what the system router needs from the daemon.
type Backend interface {
	SystemInfo(ctx context.Context) system.Info
	SystemVersion(ctx context.Context) system.Version
	// SubscribeToEvents replays buffered events in [since, until] matching f (none when since is zero)
	// and streams new ones until cancel is called.
	SubscribeToEvents(since, until time.Time, f filters.Args) ([]events.Message, <-chan events.Message, func())
}

// DiskUsageBackend answers /system/df; each part is optional (nil while the service does not exist).
type DiskUsageBackend interface {
	DiskUsage(ctx context.Context, opts system.DiskUsageOptions) (*system.DiskUsage, error)
}
