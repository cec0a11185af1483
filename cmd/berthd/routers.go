package main

import (
	"github.com/berthd/berthd/api/server/router"
	containerrouter "github.com/berthd/berthd/api/server/router/container"
	imagerouter "github.com/berthd/berthd/api/server/router/image"
	networkrouter "github.com/berthd/berthd/api/server/router/network"
	pluginrouter "github.com/berthd/berthd/api/server/router/plugin"
	systemrouter "github.com/berthd/berthd/api/server/router/system"
	volumerouter "github.com/berthd/berthd/api/server/router/volume"
	"github.com/berthd/berthd/daemon"
	"github.com/berthd/berthd/daemon/events"
)

// routers builds one router per API area from the daemon's services. Areas add their line here.
func routers(d *daemon.Daemon) []router.Router {
	return []router.Router{
		systemrouter.NewRouter(d.SystemBackend(), d, events.AcceptedFilters),
		volumerouter.NewRouter(d.VolumesService()),
		imagerouter.NewRouter(d.ImageService()),
		pluginrouter.NewRouter(d.PluginManager()),
		containerrouter.NewRouter(d.ContainerBackend()),
		networkrouter.NewRouter(d.NetworkBackend()),
	}
}
