package container

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/berthd/berthd/api/server/httputils"
	"github.com/berthd/berthd/api/types/container"
)

// hijack takes over the connection. The answer's status line is written later by the returned
// function, once the backend is ready, as dockerd's "101 UPGRADED" (or 200 for clients that did not ask
// for an upgrade).
func hijack(w http.ResponseWriter, req *http.Request, contentType string) (net.Conn, *bufio.Reader, func(), error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, nil, fmt.Errorf("error attaching to container: connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, nil, err
	}
	upgrade := upgradeWanted(req)
	var once sync.Once
	ready := func() {
		once.Do(func() {
			if upgrade {
				fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
			} else {
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
			}
		})
	}
	return conn, rw.Reader, ready, nil
}

// closeWriter half-closes a connection so the client sees EOF on its read side.
func closeWriter(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

func (r *containerRouter) postContainersAttach(w http.ResponseWriter, req *http.Request) error {
	ref := req.PathValue("name")
	tty, err := r.backend.ContainerAttachCheck(req.Context(), ref, req.Form.Get("detachKeys"))
	if err != nil {
		return err
	}
	opts := container.AttachOptions{
		Stream: httputils.BoolValue(req, "stream"), Stdin: httputils.BoolValue(req, "stdin"),
		Stdout: httputils.BoolValue(req, "stdout"), Stderr: httputils.BoolValue(req, "stderr"),
		Logs: httputils.BoolValue(req, "logs"), DetachKeys: req.Form.Get("detachKeys"),
	}
	conn, in, ready, err := hijack(w, req, streamType(req, tty))
	if err != nil {
		return err
	}
	defer conn.Close()
	stdout, stderr := outputs(conn, tty)
	var stdin io.Reader
	if opts.Stdin {
		stdin = in
	}
	// After the hijack the request's context no longer tells whether the client is there (a half-close
	// of its stdin cancels it); a failed write does, and ends the attach.
	ctx := context.WithoutCancel(req.Context())
	err = r.backend.ContainerAttach(ctx, ref, opts, stdin, stdout, stderr, ready)
	ready()
	if err != nil {
		fmt.Fprintf(systemErrWriter(conn), "%s\n", err)
	}
	closeWriter(conn)
	return err
}

func (r *containerRouter) postContainerExecStart(w http.ResponseWriter, req *http.Request) error {
	id := req.PathValue("id")
	var opts container.ExecStartOptions
	if err := httputils.ReadJSON(req, &opts); err != nil && !httputils.IsEOF(err) {
		return err
	}
	if _, err := r.backend.ExecCheck(req.Context(), id); err != nil {
		return err
	}
	if opts.Detach {
		if err := r.backend.ExecStart(req.Context(), id, nil, nil, nil, opts.ConsoleSize); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// The framing follows the start request's Tty, as dockerd's: clients send the exec's own Tty there.
	tty := opts.Tty
	conn, in, ready, err := hijack(w, req, streamType(req, tty))
	if err != nil {
		return err
	}
	defer conn.Close()
	ready()
	stdout, stderr := outputs(conn, tty)
	err = r.backend.ExecStart(context.WithoutCancel(req.Context()), id, in, stdout, stderr, opts.ConsoleSize)
	if err != nil {
		fmt.Fprintf(stdout, "%s\r\n", err)
	}
	closeWriter(conn)
	return err
}
