package admin

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/berthd/berthd/integration/internal/volplugin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	return l.Addr().String()
}

type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	assert.NilError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	assert.NilError(t, err)
	return fams
}

// value is the counter, gauge or histogram count of the sample of family name whose labels include want.
func (s scrape) value(name string, want map[string]string) float64 {
	f := s[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsAfterKnownTraffic scrapes --metrics-addr after known traffic: API requests by route and
// status with latency histograms, containers and volumes by state, plugin calls by plugin, method and
// outcome, containerd call latency.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	addr := freeAddr(t)
	d := daemon.NewWithBusybox(t, "--metrics-addr", addr)
	plugin := volplugin.Start(t, d)
	before := scrapeMetrics(t, addr).value("berthd_api_requests_total", map[string]string{"route": "/containers/json", "method": "GET", "status": "200"})
	for i := 0; i < 3; i++ {
		d.MustDocker(t, "ps", "-a")
	}
	res := d.Docker(t, "inspect", "--type", "container", "nosuch")
	assert.Check(t, res.ExitCode != 0)
	d.MustDocker(t, "volume", "create", "plain")
	d.MustDocker(t, "volume", "create", "-d", "volplugin", "pv")
	d.MustDocker(t, "run", "--name", "used", "-v", "plain:/data", "busybox", "true")
	d.MustDocker(t, "run", "-d", "--name", "up", "busybox", "sleep", "60")

	s := scrapeMetrics(t, addr)
	after := s.value("berthd_api_requests_total", map[string]string{"route": "/containers/json", "method": "GET", "status": "200"})
	assert.Check(t, is.Equal(after-max(before, 0), 3.0))
	assert.Check(t, s.value("berthd_api_request_duration_seconds", map[string]string{"route": "/containers/json", "status": "200"}) >= 3)
	assert.Check(t, is.Equal(s.value("berthd_api_requests_total", map[string]string{"route": "/containers/{name}/json", "status": "404"}), 1.0))
	assert.Check(t, is.Equal(s.value("berthd_containers", map[string]string{"state": "running"}), 1.0))
	assert.Check(t, is.Equal(s.value("berthd_containers", map[string]string{"state": "stopped"}), 1.0))
	assert.Check(t, is.Equal(s.value("berthd_volumes", map[string]string{"driver": "local", "state": "in_use"}), 1.0))
	assert.Check(t, is.Equal(s.value("berthd_volumes", map[string]string{"driver": "volplugin", "state": "unused"}), 1.0))
	assert.Check(t, is.Equal(s.value("berthd_plugin_calls_total", map[string]string{"plugin": "volplugin", "method": "VolumeDriver.Create", "outcome": "ok"}), 1.0))
	assert.Check(t, s.value("berthd_plugin_call_duration_seconds", map[string]string{"plugin": "volplugin", "method": "Plugin.Activate", "outcome": "ok"}) >= 1)
	assert.Check(t, s.value("berthd_containerd_call_duration_seconds", map[string]string{"method": "/containerd.services.tasks.v1.Tasks/Create", "code": "OK"}) >= 2)

	body := scrapeText(t, addr)
	assert.Check(t, is.Contains(body, "# TYPE berthd_api_request_duration_seconds histogram"))
	d.MustDocker(t, "rm", "-f", "up")

	// The plugin dies: the next call to it is counted with its failure outcome.
	plugin.Kill()
	res = d.Docker(t, "volume", "rm", "pv")
	assert.Check(t, res.ExitCode != 0, res.Combined())
	s = scrapeMetrics(t, addr)
	failed := 0.0
	for _, outcome := range []string{"unreachable", "lost", "timeout"} {
		if v := s.value("berthd_plugin_calls_total", map[string]string{"plugin": "volplugin", "method": "VolumeDriver.Remove", "outcome": outcome}); v > 0 {
			failed += v
		}
	}
	assert.Check(t, failed >= 1, "a failed VolumeDriver.Remove is counted:\n%s", scrapeText(t, addr))
}

func scrapeText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return string(b)
}
