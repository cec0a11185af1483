package server

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/log"
	"github.com/sirupsen/logrus"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// capture returns a context whose containerd/log logger writes JSON lines to the returned buffer.
func capture() (context.Context, *bytes.Buffer) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{DisableTimestamp: true})
	l.SetLevel(logrus.InfoLevel)
	return log.WithLogger(context.Background(), logrus.NewEntry(l)), &buf
}

func TestServerErrorsLoggedOnce(t *testing.T) {
	s := newTestServer()
	for _, tc := range []struct {
		method, path string
		code         int
		logged       string
	}{
		{"POST", "/fail", 500, `{"error":"boom","level":"error","method":"POST","msg":"Handler for POST /fail returned error","path":"/fail","status":500}`},
		{"POST", "/v1.45/fail", 500, `{"error":"boom","level":"error","method":"POST","msg":"Handler for POST /fail returned error","path":"/fail","status":500}`},
		{"GET", "/things/x", 404, ""},
		{"GET", "/echo-version", 200, ""},
		{"GET", "/v9.99/echo-version", 400, ""},
		// A stream that failed after its header keeps its own (warning) line and is not counted as a 500.
		{"GET", "/stream", 200, ""},
	} {
		ctx, buf := capture()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil).WithContext(ctx))
		assert.Check(t, is.Equal(rec.Code, tc.code), tc.path)
		var errLines []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if strings.Contains(line, `"level":"error"`) {
				errLines = append(errLines, line)
			}
		}
		if tc.logged == "" {
			assert.Check(t, is.Len(errLines, 0), tc.path)
			continue
		}
		assert.Check(t, is.DeepEqual(errLines, []string{tc.logged}), tc.path)
	}
}
