package daemon

import (
	"context"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/metrics"
)

// initMetrics gives the metrics endpoint its scrape-time counts: containers by state, volumes by driver
// and use. The request and call metrics are fed by hooks in api/server, plugin/v1 and libcontainerd.
func (d *Daemon) initMetrics(ctx context.Context) error {
	ctrs, vols := d.ctrs.svc.Backend(), d.volumes
	metrics.SetSources(metrics.Sources{
		Containers: func() map[string]int {
			_, running, paused, stopped := ctrs.Counts()
			return map[string]int{"running": running, "paused": paused, "stopped": stopped}
		},
		Volumes: func(ctx context.Context) map[[2]string]int {
			out := map[[2]string]int{}
			all, _, err := vols.List(ctx, filters.NewArgs())
			if err != nil {
				return out
			}
			unused, _, err := vols.List(ctx, filters.NewArgs(filters.Arg("dangling", "true")))
			if err != nil {
				return out
			}
			dangling := map[string]bool{}
			for _, v := range unused {
				dangling[v.Driver+"/"+v.Name] = true
			}
			for _, v := range all {
				state := "in_use"
				if dangling[v.Driver+"/"+v.Name] {
					state = "unused"
				}
				out[[2]string{v.Driver, state}]++
			}
			return out
		},
	})
	d.onShutdown("metrics sources", func(context.Context) error {
		metrics.SetSources(metrics.Sources{})
		return nil
	})
	return nil
}
