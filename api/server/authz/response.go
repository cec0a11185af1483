package authz

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
)

// bufferedWriter holds a response until the plugins have seen it. A handler that flushes (a stream:
// events, logs -f, pull progress), hijacks the connection (attach, exec) or writes more than MaxBodySize
// (save, export) turns it into a pass-through from then on: such a response cannot be held back, so only
// its start was authorized (as in dockerd for streams).
type bufferedWriter struct {
	under    http.ResponseWriter
	header   http.Header
	status   int
	body     bytes.Buffer
	streamed bool
}

func (w *bufferedWriter) Header() http.Header {
	if w.streamed {
		return w.under.Header()
	}
	return w.header
}

func (w *bufferedWriter) WriteHeader(code int) {
	if w.streamed {
		w.under.WriteHeader(code)
		return
	}
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferedWriter) Write(p []byte) (int, error) {
	if w.status == 0 && !w.streamed {
		w.status = http.StatusOK
	}
	if !w.streamed && w.body.Len()+len(p) > MaxBodySize {
		// Plugins are never sent a body this large, and holding a `docker save` or `export` stream in
		// memory would let one request exhaust the daemon (dockerd's middleware does hold it all): the
		// response is passed through from here, as a stream is.
		if err := w.flushAll(); err != nil {
			return 0, err
		}
	}
	if w.streamed {
		return w.under.Write(p)
	}
	return w.body.Write(p)
}

func (w *bufferedWriter) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// flushAll sends what was held: headers, status, body.
func (w *bufferedWriter) flushAll() error {
	if w.streamed {
		return nil
	}
	w.streamed = true
	h := w.under.Header()
	for k, v := range w.header {
		h[k] = v
	}
	if w.status != 0 {
		w.under.WriteHeader(w.status)
	}
	if w.body.Len() > 0 {
		_, err := w.under.Write(w.body.Bytes())
		w.body.Reset()
		return err
	}
	return nil
}

func (w *bufferedWriter) Flush() {
	_ = w.flushAll()
	if f, ok := w.under.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *bufferedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.under.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	// Headers set before the hijack are written by the handler itself on the raw connection.
	w.streamed = true
	for k, v := range w.header {
		w.under.Header()[k] = v
	}
	return h.Hijack()
}

func (w *bufferedWriter) Unwrap() http.ResponseWriter { return w.under }
