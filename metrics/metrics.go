// Package metrics holds berthd's Prometheus metrics and the small hooks that feed them: Engine API
// requests (api/server), legacy plugin calls (plugin/v1), containerd gRPC calls (libcontainerd/remote and
// the daemon's own containerd client), and container and volume counts read when scraped.
//
// It is a top-level leaf package (it imports no berthd package) because its hooks live in layers that must
// not import daemon/...: plugin/v1 and libcontainerd/remote. Every metric is registered on one private
// registry served by Handler, so nothing depends on process-global Prometheus state, and the hooks cost a
// map lookup and an atomic add when nobody scrapes.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

const namespace = "berthd"

var (
	registry = prometheus.NewRegistry()

	apiRequests = counter("api", "requests_total",
		"Engine API requests by route (the pattern, not the path), method and status code.",
		"route", "method", "status")
	apiLatency = histogram("api", "request_duration_seconds", 0.0005,
		"Engine API request latency by route, method and status code (streams count until they end).",
		"route", "method", "status")

	pluginCalls = counter("plugin", "calls_total",
		"Legacy plugin calls by plugin, method and outcome (ok, error, timeout, unreachable, lost).",
		"plugin", "method", "outcome")
	pluginLatency = histogram("plugin", "call_duration_seconds", 0.0005,
		"Legacy plugin call latency by plugin, method and outcome.",
		"plugin", "method", "outcome")

	containerdLatency = histogram("containerd", "call_duration_seconds", 0.0002,
		"containerd gRPC call latency by method and gRPC status code (streams: until established).",
		"method", "code")

	containersDesc = prometheus.NewDesc(namespace+"_containers", "Containers by state.", []string{"state"}, nil)
	volumesDesc    = prometheus.NewDesc(namespace+"_volumes", "Volumes by driver and state (in_use or unused).", []string{"driver", "state"}, nil)
)

func counter(subsystem, name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help,
	}, labels)
}

// histogram has ten buckets growing fourfold from first (seconds).
func histogram(subsystem, name string, first float64, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: subsystem, Name: name, Help: help,
		Buckets: prometheus.ExponentialBuckets(first, 4, 10),
	}, labels)
}

func init() {
	registry.MustRegister(apiRequests, apiLatency, pluginCalls, pluginLatency, containerdLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Handler serves the metrics in Prometheus' text format. The counts are collected per scrape, bounded
// by the scrape request's context.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		perScrape := prometheus.NewRegistry()
		perScrape.MustRegister(counts{ctx: r.Context()})
		promhttp.HandlerFor(prometheus.Gatherers{registry, perScrape}, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	})
}

// InstrumentAPI wraps the handler of one route (pattern as registered, e.g. "/containers/{name}/json") to
// count its requests and time them by status code.
func InstrumentAPI(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			code := rec.code
			if code == 0 {
				code = http.StatusOK
			}
			lv := []string{route, r.Method, strconv.Itoa(code)}
			apiRequests.WithLabelValues(lv...).Inc()
			apiLatency.WithLabelValues(lv...).Observe(time.Since(start).Seconds())
		}()
		h(rec, r)
	}
}

// PluginCall records one call to a legacy plugin.
func PluginCall(plugin, method, outcome string, took time.Duration) {
	pluginCalls.WithLabelValues(plugin, method, outcome).Inc()
	pluginLatency.WithLabelValues(plugin, method, outcome).Observe(took.Seconds())
}

// ContainerdInterceptors time every unary call and stream set-up on a containerd connection.
func ContainerdInterceptors() (grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor) {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		containerdLatency.WithLabelValues(method, status.Code(err).String()).Observe(time.Since(start).Seconds())
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		start := time.Now()
		s, err := streamer(ctx, desc, cc, method, opts...)
		containerdLatency.WithLabelValues(method, status.Code(err).String()).Observe(time.Since(start).Seconds())
		return s, err
	}
	return unary, stream
}

// Sources give the counts read at scrape time. Either may be nil.
type Sources struct {
	// Containers returns the number of containers per state (running, paused, stopped, ...).
	Containers func() map[string]int
	// Volumes returns the number of volumes per driver and state ("in_use" or "unused").
	Volumes func(ctx context.Context) map[[2]string]int
}

var (
	srcMu   sync.RWMutex
	sources Sources
)

// SetSources installs the count sources (the daemon does, once its services exist).
func SetSources(s Sources) {
	srcMu.Lock()
	sources = s
	srcMu.Unlock()
}

// counts collects the container and volume gauges when scraped, so they are never stale.
type counts struct{ ctx context.Context }

func (counts) Describe(ch chan<- *prometheus.Desc) {
	ch <- containersDesc
	ch <- volumesDesc
}

func (c counts) Collect(ch chan<- prometheus.Metric) {
	srcMu.RLock()
	s := sources
	srcMu.RUnlock()
	if s.Containers != nil {
		for state, n := range s.Containers() {
			ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(n), state)
		}
	}
	if s.Volumes != nil {
		// A scrape must not wait on a hung volume plugin: the volume service answers from its own records.
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		for k, n := range s.Volumes(ctx) {
			ch <- prometheus.MustNewConstMetric(volumesDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
		}
	}
}
