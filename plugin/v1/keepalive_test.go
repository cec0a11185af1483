package v1

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
)

// Calls reuse kept-alive connections, yet a plugin replaced by a new instance (same path, new socket
// file) is noticed on the very next call: it is activated again and the old instance gets nothing more.
func TestKeepAliveStillNoticesReplacedSocket(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	path := filepath.Join(cfg.SocketDir, "p.sock")
	// The first instance counts the connections it accepts.
	var conns atomic.Int32
	fp := newFakePlugin(t, path, "VolumeDriver")
	assert.NilError(t, os.MkdirAll(cfg.SocketDir, 0o755))
	fp.srv = &http.Server{Handler: fp, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	assert.NilError(t, err)
	fp.ln = l
	go fp.srv.Serve(l)
	t.Cleanup(func() { fp.srv.Close() })

	r := NewRegistry(cfg)
	defer r.Close()
	p, err := r.Get(ctx, "p", "VolumeDriver")
	assert.NilError(t, err)
	for i := 0; i < 20; i++ {
		assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
	}
	assert.Equal(t, conns.Load(), int32(1), "sequential calls should share one connection")

	// Replace the socket while the old server keeps its connections open: the pooled connection to the
	// old instance must not be used.
	assert.NilError(t, fp.ln.Close()) // unlinks the file; established connections stay up
	fp2 := newFakePlugin(t, path, "VolumeDriver").start()
	before := fp.count("Echo")
	assert.NilError(t, p.CallContext(ctx, "Echo", nil, nil))
	assert.Equal(t, fp.count("Echo"), before, "old instance was called after its socket was replaced")
	assert.DeepEqual(t, fp2.callList(), []string{"Plugin.Activate", "Echo"})
	assert.Equal(t, p.Activations(), uint64(2))
}
