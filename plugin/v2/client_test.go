package v2

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func TestClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	l, err := net.Listen("unix", sock)
	assert.NilError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"Implements":["VolumeDriver"]}`))
	})
	mux.HandleFunc("POST /VolumeDriver.Get", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		w.Write([]byte(`{"Err":"no such volume"}`))
	})
	mux.HandleFunc("POST /VolumeDriver.Empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /VolumeDriver.Hang", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	c := NewClient(sock, 0)
	impl, err := c.Activate(context.Background())
	assert.NilError(t, err)
	assert.DeepEqual(t, impl, []string{"VolumeDriver"})

	err = c.CallContext(context.Background(), "/VolumeDriver.Get", map[string]string{"Name": "x"}, nil)
	assert.Error(t, err, "VolumeDriver.Get: no such volume")
	err = c.CallContext(context.Background(), "VolumeDriver.Nope", nil, nil)
	assert.Check(t, errdefs.IsNotFound(err), err)
	err = c.CallContext(context.Background(), "VolumeDriver.Empty", nil, nil)
	assert.ErrorContains(t, err, "empty reply")

	short := NewClient(sock, 200*time.Millisecond)
	start := time.Now()
	err = short.CallContext(context.Background(), "VolumeDriver.Hang", nil, nil)
	assert.Check(t, errdefs.IsUnavailable(err), err)
	assert.Check(t, time.Since(start) < 5*time.Second)

	dead := NewClient(filepath.Join(t.TempDir(), "none.sock"), 0)
	err = dead.CallContext(context.Background(), "VolumeDriver.Get", nil, nil)
	assert.Check(t, errdefs.IsUnavailable(err), err)

	p := NewFromConfig("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "p:latest", "", validConfig(), "/d")
	err = p.Client().CallContext(context.Background(), "VolumeDriver.Get", nil, nil)
	assert.Check(t, errdefs.IsUnavailable(err), err)
}
