package main

import (
	"context"
	"sync/atomic"

	"github.com/berthd/berthd/api/server"
	"github.com/berthd/berthd/api/server/authz"
	"github.com/berthd/berthd/api/server/router"
	"github.com/berthd/berthd/daemon"
	"github.com/berthd/berthd/daemon/config"
)

// authzMiddleware is the running daemon's authorization chain, for SIGHUP.
var authzMiddleware atomic.Pointer[authz.Middleware]

// setupAuthz puts the API behind the configured authorization plugins. As dockerd, it refuses to start
// when one of them cannot be found: serving without the authorization the administrator asked for would
// fail open.
func setupAuthz(ctx context.Context, d *daemon.Daemon, srv *server.Server, cfg *config.Config) error {
	mw := authz.New(d.PluginGetter(), nil)
	if err := mw.Validate(ctx, cfg.AuthorizationPlugins); err != nil {
		return err
	}
	mw.SetPlugins(cfg.AuthorizationPlugins)
	srv.Use(func(h router.HandlerFunc) router.HandlerFunc { return mw.Wrap(h) })
	d.SetAuthzChain(mw)
	authzMiddleware.Store(mw)
	return nil
}

// reloadAuthz applies a reloaded plugin list; a list naming a missing plugin is refused whole and the
// old one stays.
func reloadAuthz(ctx context.Context, cfg *config.Config) error {
	mw := authzMiddleware.Load()
	if mw == nil {
		return nil
	}
	if err := mw.Validate(ctx, cfg.AuthorizationPlugins); err != nil {
		return err
	}
	mw.SetPlugins(cfg.AuthorizationPlugins)
	return nil
}
