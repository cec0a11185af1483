package main

import (
	"github.com/berthd/berthd/api/server/router"
	buildrouter "github.com/berthd/berthd/api/server/router/build"
	containerrouter "github.com/berthd/berthd/api/server/router/container"
	imagerouter "github.com/berthd/berthd/api/server/router/image"
	networkrouter "github.com/berthd/berthd/api/server/router/network"
	pluginrouter "github.com/berthd/berthd/api/server/router/plugin"
	systemrouter "github.com/berthd/berthd/api/server/router/system"
	volumerouter "github.com/berthd/berthd/api/server/router/volume"
	"github.com/berthd/berthd/daemon"
)

// routers builds one router per API area from the daemon's services. Areas add their line here.
func routers(d *daemon.Daemon) []router.Router {
	var bk buildrouter.BuildKitBackend
	if k := d.BuildKit(); k != nil {
		bk = k
	}
	var buildOpts []buildrouter.Option
	if c := d.BuildCache(); c != nil {
		buildOpts = append(buildOpts, buildrouter.WithBuildKit(c))
	}
	return []router.Router{
		systemrouter.NewRouter(d.SystemBackend(), d, daemon.EventFilters()),
		volumerouter.NewRouter(d.VolumesService()),
		imagerouter.NewRouter(d.ImageService()),
		pluginrouter.NewRouter(d.PluginManager()),
		containerrouter.NewRouter(d.ContainerBackend()),
		buildrouter.NewRouter(d.BuildBackend(), bk, buildOpts...),
		networkrouter.NewRouter(d.NetworkBackend()),
	}
}
