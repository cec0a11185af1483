package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/berthd/berthd/api/server/router"
)

// BuildKitBackend serves the two hijacked endpoints buildx's "docker" driver and the docker CLI's
// BuildKit client use: BuildKit's gRPC API (POST /grpc) and the client's session (POST /session).
type BuildKitBackend interface {
	// Ready waits (bounded) until BuildKit has started; an error (Unavailable) says why it has not.
	Ready(ctx context.Context) error
	// ServeConn serves gRPC over HTTP/2 (prior knowledge) on conn until the client closes it.
	ServeConn(ctx context.Context, conn net.Conn)
	// HandleSession hijacks the request itself and keeps the session until the client ends it.
	HandleSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error
}

func (r *buildRouter) buildKitRoutes() []router.Route {
	if r.buildkit == nil {
		return nil
	}
	return []router.Route{
		router.Post("/grpc", r.postGRPC),
		router.Post("/session", r.postSession),
	}
}

// postGRPC is POST /grpc: an h2c upgrade, answered 101, after which the connection carries gRPC. A
// missing or other upgrade is a 500, as in dockerd (which does not classify these errors; /session does).
func (r *buildRouter) postGRPC(w http.ResponseWriter, req *http.Request) error {
	proto := req.Header.Get("Upgrade")
	if proto == "" {
		return errors.New("no upgrade proto in request")
	}
	if proto != "h2c" {
		return fmt.Errorf("protocol %s not supported", proto)
	}
	if err := r.buildkit.Ready(req.Context()); err != nil {
		return err
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return fmt.Errorf("handler does not support hijack")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", proto); err != nil {
		return nil
	}
	var c net.Conn = conn
	if rw.Reader.Buffered() > 0 {
		c = &bufferedConn{Conn: conn, r: rw.Reader}
	}
	// The request's context ends when the hijacked connection's request does; the connection itself is
	// what bounds a gRPC session.
	r.buildkit.ServeConn(context.WithoutCancel(req.Context()), c)
	return nil
}

// postSession is POST /session; a failure before the hijack is the client's (dockerd: 400).
func (r *buildRouter) postSession(w http.ResponseWriter, req *http.Request) error {
	if err := r.buildkit.Ready(req.Context()); err != nil {
		return err
	}
	if err := r.buildkit.HandleSession(req.Context(), w, req); err != nil {
		return invalidParamErr(err.Error())
	}
	return nil
}

// bufferedConn reads what the HTTP server had already buffered before the connection itself.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
