package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, rec.Code, http.StatusOK)
	return rec.Body.String()
}

func TestInstrumentAPIRecordsRouteAndStatus(t *testing.T) {
	h := InstrumentAPI("/unit/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/unit/missing" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	for _, p := range []string{"/unit/a", "/unit/b", "/unit/missing"} {
		h(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	body := scrape(t)
	assert.Check(t, is.Contains(body, `berthd_api_requests_total{method="GET",route="/unit/{name}",status="200"} 2`))
	assert.Check(t, is.Contains(body, `berthd_api_requests_total{method="GET",route="/unit/{name}",status="404"} 1`))
	assert.Check(t, is.Contains(body, `berthd_api_request_duration_seconds_count{method="GET",route="/unit/{name}",status="200"} 2`))
}

func TestHijackCountsAsSwitchingProtocols(t *testing.T) {
	h := InstrumentAPI("/unit/attach", func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		assert.Check(t, err)
		_, _ = c.Write([]byte("HTTP/1.1 101 UPGRADED\r\n\r\n"))
		c.Close()
	})
	// The client has its answer before the instrumented handler returns and records it: wait for that.
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h(w, r)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	<-done
	assert.Check(t, is.Contains(scrape(t), `berthd_api_requests_total{method="GET",route="/unit/attach",status="101"} 1`))
}

func TestPluginCallsAndCounts(t *testing.T) {
	PluginCall("p1", "VolumeDriver.Get", "timeout", 2*time.Second)
	SetSources(Sources{
		Containers: func() map[string]int { return map[string]int{"running": 2} },
		Volumes: func(ctx context.Context) map[[2]string]int {
			assert.Check(t, ctx.Err() == nil)
			return map[[2]string]int{{"local", "unused"}: 3}
		},
	})
	defer SetSources(Sources{})
	body := scrape(t)
	assert.Check(t, is.Contains(body, `berthd_plugin_calls_total{method="VolumeDriver.Get",outcome="timeout",plugin="p1"} 1`))
	assert.Check(t, is.Contains(body, `berthd_containers{state="running"} 2`))
	assert.Check(t, is.Contains(body, `berthd_volumes{driver="local",state="unused"} 3`))
}

func TestContainerdInterceptorRecordsCode(t *testing.T) {
	unary, _ := ContainerdInterceptors()
	err := unary(context.Background(), "/unit.Svc/Call", nil, nil, nil, func(context.Context, string, any, any, *grpcConn, ...grpcCallOption) error {
		return errors.New("boom")
	})
	assert.Check(t, is.ErrorContains(err, "boom"))
	assert.Check(t, strings.Contains(scrape(t), `berthd_containerd_call_duration_seconds_count{code="Unknown",method="/unit.Svc/Call"} 1`))
}

type (
	grpcConn       = grpc.ClientConn
	grpcCallOption = grpc.CallOption
)
