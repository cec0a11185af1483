package store

import (
	"context"
	"sync"

	"github.com/containerd/containerd/content"
	"github.com/opencontainers/go-digest"
)

// asyncChunk is how much one gRPC write carries: just under 1 MiB, so the marshalled message fits the
// 1 MiB buffers gRPC pools. A larger message gets a freshly allocated buffer each time, and on this kind
// of machine the page faults and returns of that memory cost more than the whole copy.
const asyncChunk = 1<<20 - 4<<10

// asyncWriters is how many chunks may be in flight: some being sent while the caller fills the next.
const asyncWriters = 4

var asyncBufs = sync.Pool{New: func() any { b := make([]byte, 0, asyncChunk); return &b }}

// AsyncWriter wraps a content writer so Write only copies: chunks are sent to containerd by a goroutine,
// overlapping the caller's reading and hashing with containerd's writing and hashing (containerd's
// remote writer makes a synchronous round trip per Write). A failed send is reported by a later Write,
// Status, Commit or Close. Not safe for concurrent use (like content.Writer).
type AsyncWriter struct {
	content.Writer

	free chan *[]byte // nil entries are buffers not taken from the pool yet
	work chan *[]byte
	done chan struct{}
	cur  *[]byte

	mu  sync.Mutex
	err error

	closeOnce sync.Once
}

// NewAsyncWriter starts the sender goroutine; Close (or Commit) stops it.
func NewAsyncWriter(w content.Writer) *AsyncWriter {
	a := &AsyncWriter{Writer: w, free: make(chan *[]byte, asyncWriters), work: make(chan *[]byte, asyncWriters), done: make(chan struct{})}
	for i := 0; i < asyncWriters; i++ {
		a.free <- nil
	}
	go a.send()
	return a
}

func (a *AsyncWriter) send() {
	defer close(a.done)
	for b := range a.work {
		if a.failed() == nil {
			if _, err := a.Writer.Write(*b); err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
			}
		}
		*b = (*b)[:0]
		a.free <- b
	}
}

func (a *AsyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *AsyncWriter) Write(p []byte) (int, error) {
	if err := a.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		if a.cur == nil {
			a.cur = <-a.free
			if a.cur == nil {
				a.cur = asyncBufs.Get().(*[]byte)
			}
		}
		b := *a.cur
		c := copy(b[len(b):cap(b)], p)
		*a.cur = b[:len(b)+c]
		p = p[c:]
		if len(*a.cur) == cap(*a.cur) {
			a.work <- a.cur
			a.cur = nil
		}
	}
	return n, nil
}

// flush waits until everything written so far has reached containerd.
func (a *AsyncWriter) flush() error {
	if a.cur != nil {
		if len(*a.cur) > 0 {
			a.work <- a.cur
		} else {
			a.free <- a.cur
		}
		a.cur = nil
	}
	// Take every buffer back: then no send is in flight.
	bufs := make([]*[]byte, 0, asyncWriters)
	for i := 0; i < asyncWriters; i++ {
		bufs = append(bufs, <-a.free)
	}
	for _, b := range bufs {
		a.free <- b
	}
	return a.failed()
}

func (a *AsyncWriter) Status() (content.Status, error) {
	if err := a.flush(); err != nil {
		return content.Status{}, err
	}
	return a.Writer.Status()
}

func (a *AsyncWriter) Digest() digest.Digest {
	_ = a.flush()
	return a.Writer.Digest()
}

func (a *AsyncWriter) Truncate(size int64) error {
	if err := a.flush(); err != nil {
		return err
	}
	return a.Writer.Truncate(size)
}

func (a *AsyncWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	err := a.flush()
	a.stop()
	if err != nil {
		return err
	}
	return a.Writer.Commit(ctx, size, expected, opts...)
}

// stop ends the sender and gives the buffers back to the pool.
func (a *AsyncWriter) stop() {
	a.closeOnce.Do(func() {
		if a.cur != nil {
			a.free <- a.cur
			a.cur = nil
		}
		close(a.work)
		<-a.done
		for i := 0; i < asyncWriters; i++ {
			if b := <-a.free; b != nil {
				*b = (*b)[:0]
				asyncBufs.Put(b)
			}
		}
		// Later flushes (Digest after Commit) find the tokens they count on.
		for i := 0; i < asyncWriters; i++ {
			a.free <- nil
		}
	})
}

func (a *AsyncWriter) Close() error {
	a.stop()
	return a.Writer.Close()
}
