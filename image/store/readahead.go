package store

import (
	"context"
	"io"

	"github.com/containerd/containerd/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readAheadSize is how much one gRPC read fetches. containerd's remote ReaderAt makes one call per ReadAt,
// and archive writers read 32 KiB at a time, which makes saving a large image thousands of round trips.
const readAheadSize = 4 << 20

// readAheadProvider wraps a content store so sequential reads are served from large chunks.
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
}

func (r *readAhead) Size() int64  { return r.ra.Size() }
func (r *readAhead) Close() error { return r.ra.Close() }

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
	size := int64(readAheadSize)
	if rest := r.ra.Size() - pos; rest < size {
		size = rest
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	r.buf = r.buf[:size]
	m, err := r.ra.ReadAt(r.buf, pos)
	r.buf, r.off = r.buf[:m], pos
	if m > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}
