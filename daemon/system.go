package daemon

import (
	"context"
	"os"
	"time"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	systemtypes "github.com/berthd/berthd/api/types/system"
	"github.com/berthd/berthd/daemon/system"
)

// initSystem builds the /info and /version service last, once every source exists.
func (d *Daemon) initSystem(ctx context.Context) error {
	cgroupVersion := "1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroupVersion = "2"
	}
	d.system = system.New(system.Config{
		ID:            d.id,
		Root:          d.cfg.Root,
		Debug:         func() bool { return d.Config().Debug },
		LiveRestore:   func() bool { return d.Config().LiveRestore },
		Labels:        func() []string { return d.Config().Labels },
		Experimental:  d.cfg.Experimental,
		CgroupVersion: cgroupVersion,
		Warnings:      d.warnings,

		SecurityOptions: d.securityOptions,
		Admin: func() system.AdminInfo {
			c := d.Config()
			return adminInfo(&c)
		},
	}, d.systemSources())
	return nil
}

// systemSources collects what each area contributes to /info; areas add their part in their own file.
func (d *Daemon) systemSources() system.Sources {
	src := system.Sources{
		Containerd:     d.containerdVersion,
		EventListeners: d.events.SubscribersCount,
	}
	for _, add := range d.infoSources {
		add(&src)
	}
	return src
}

// SystemBackend is the system router's backend.
func (d *Daemon) SystemBackend() *SystemBackend { return &SystemBackend{d: d} }

// SystemBackend adapts the system service and the event bus to the system router.
type SystemBackend struct{ d *Daemon }

func (b *SystemBackend) SystemInfo(ctx context.Context) systemtypes.Info { return b.d.system.Info(ctx) }

func (b *SystemBackend) SystemVersion(ctx context.Context) systemtypes.Version {
	return b.d.system.Version(ctx)
}

func (b *SystemBackend) SubscribeToEvents(since, until time.Time, f filters.Args) ([]eventtypes.Message, <-chan eventtypes.Message, func()) {
	return b.d.events.SubscribeTopic(since, until, f)
}

func eventActor(id string, attrs map[string]string) eventtypes.Actor {
	return eventtypes.Actor{ID: id, Attributes: attrs}
}
