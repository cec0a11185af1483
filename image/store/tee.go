package store

import (
	"io"
	"sync"

	"github.com/containerd/containerd/content"
)

// teeWriter writes a blob to containerd and hands the same bytes, through an in-memory pipe of buf bytes,
// to read, which runs beside it (checking and extracting the blob); finish ends the stream and collects
// read's result. Commit and Close are the embedding writer's business.
type teeWriter[T any] struct {
	content.Writer
	pw    *bufPipe
	res   chan T
	abort chan struct{}
	once  sync.Once
	r     T
}

func newTeeWriter[T any](w content.Writer, buf int, read func(r io.Reader, abort <-chan struct{}) T) *teeWriter[T] {
	t := &teeWriter[T]{Writer: NewAsyncWriter(w), pw: newBufPipe(buf), res: make(chan T, 1), abort: make(chan struct{})}
	go func() {
		r := read(t.pw, t.abort)
		_, _ = io.Copy(io.Discard, t.pw)
		t.res <- r
	}()
	return t
}

func (w *teeWriter[T]) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	if n > 0 {
		_, _ = w.pw.Write(p[:n])
	}
	return n, err
}

// finish ends the stream read sees (abort: as a failure, and stopping a read still waiting to start) and
// returns its result; later calls return the same.
func (w *teeWriter[T]) finish(abort bool) T {
	w.once.Do(func() {
		if abort {
			close(w.abort)
			w.pw.CloseWithError(io.ErrClosedPipe)
		} else {
			w.pw.CloseWithError(nil)
		}
		w.r = <-w.res
	})
	return w.r
}
