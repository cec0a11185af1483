package store

import (
	"context"
	"io"

	"github.com/containerd/containerd/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readAheadSize is how much one gRPC read fetches. containerd's remote ReaderAt makes one call per ReadAt,
// and archive writers read 32 KiB at a time, which makes saving a large image thousands of round trips.
// Just under 1 MiB: containerd answers in messages of up to 1 MiB of data, and a message over 1 MiB
// misses gRPC's buffer pool on our side (fresh memory, page faults, every time).
const readAheadSize = 1<<20 - 4<<10

// readAheadProvider wraps a content store so sequential reads are served from large chunks, the next one
// fetched while the current one is consumed.
type readAheadProvider struct {
	content.Store
}

func (p readAheadProvider) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	ra, err := p.Store.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	return &readAhead{ra: ra}, nil
}

type readAhead struct {
	ra  content.ReaderAt
	buf []byte
	off int64 // offset of buf[0]

	next *prefetch // the chunk after buf, being fetched
}

type prefetch struct {
	off  int64
	buf  []byte
	n    int
	err  error
	done chan struct{}
}

func (r *readAhead) Size() int64 { return r.ra.Size() }

func (r *readAhead) Close() error {
	if r.next != nil {
		<-r.next.done
		r.next = nil
	}
	return r.ra.Close()
}

func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	if len(p) >= readAheadSize {
		return r.ra.ReadAt(p, off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.ra.Size() {
			return n, io.EOF
		}
		if pos < r.off || pos >= r.off+int64(len(r.buf)) {
			if err := r.fill(pos); err != nil {
				return n, err
			}
		}
		n += copy(p[n:], r.buf[pos-r.off:])
	}
	return n, nil
}

func (r *readAhead) fill(pos int64) error {
	var spare []byte
	if nx := r.next; nx != nil {
		<-nx.done
		r.next = nil
		if nx.off == pos && nx.n > 0 {
			// The sequential case: the chunk is already here.
			spare, r.buf, r.off = r.buf, nx.buf[:nx.n], pos
			r.prefetch(pos+int64(nx.n), spare)
			return nil
		}
		spare = nx.buf
	}
	size := int64(readAheadSize)
	if rest := r.ra.Size() - pos; rest < size {
		size = rest
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, readAheadSize)
	}
	r.buf = r.buf[:size]
	m, err := r.ra.ReadAt(r.buf, pos)
	r.buf, r.off = r.buf[:m], pos
	if m == 0 {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	r.prefetch(pos+int64(m), spare)
	return nil
}

// prefetch starts fetching the chunk at pos into buf (or a new buffer).
func (r *readAhead) prefetch(pos int64, buf []byte) {
	size := r.ra.Size() - pos
	if size <= 0 {
		return
	}
	if size > readAheadSize {
		size = readAheadSize
	}
	if cap(buf) < readAheadSize {
		buf = make([]byte, readAheadSize)
	}
	nx := &prefetch{off: pos, buf: buf[:size], done: make(chan struct{})}
	r.next = nx
	go func() {
		defer close(nx.done)
		nx.n, nx.err = r.ra.ReadAt(nx.buf, nx.off)
	}()
}
