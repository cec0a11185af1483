package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/berthd/berthd/metrics"
	"github.com/containerd/log"
)

// serveMetrics serves /metrics on --metrics-addr (plain HTTP, as dockerd: bind it to loopback or a private
// address). It returns a stop function; with no address it does nothing.
func serveMetrics(ctx context.Context, addr string) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.G(ctx).WithError(err).Error("metrics server failed")
		}
	}()
	log.G(ctx).WithField("address", l.Addr().String()).Info("serving metrics")
	return func() {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
