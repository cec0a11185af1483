package distribution

import (
	"context"
	"io"
	"sync"
	"time"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pushProvider serves blobs to the pusher in large reads (containerd's remote ReaderAt makes one gRPC
// call per read, and the HTTP body copy reads 32 KiB at a time) and reports each layer's progress.
type pushProvider struct {
	content.Provider
	// sources answers Info (blobs' distribution-source labels, which containerd's pusher turns into
	// cross-repository mounts); nil when blobs do not come from the content store.
	sources content.InfoProvider
	emit    func(imagetypes.JSONMessage)
	// opened records the blobs actually read: a blob the registry already had is never opened.
	opened *sync.Map
}

const readChunk = 4 << 20

// Info makes the provider a content.InfoProvider, which remotes.PushContent needs to annotate
// descriptors with their sources.
func (p pushProvider) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	if p.sources == nil {
		return content.Info{}, errdefs.ErrNotFound
	}
	return p.sources.Info(ctx, dgst)
}

func (p pushProvider) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	ra, err := p.Provider.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	p.opened.Store(desc.Digest, true)
	r := &chunkedReaderAt{ra: ra}
	if images.IsLayerType(desc.MediaType) {
		r.progress = func(n int64) {
			p.emit(imagetypes.JSONMessage{Status: "Pushing", ID: shortID(desc.Digest.String()), Progress: &imagetypes.JSONProgress{Current: n, Total: desc.Size}})
		}
	}
	return r, nil
}

type chunkedReaderAt struct {
	ra       content.ReaderAt
	buf      []byte
	off      int64
	mu       sync.Mutex
	read     int64
	last     time.Time
	progress func(int64)
}

func (r *chunkedReaderAt) Size() int64  { return r.ra.Size() }
func (r *chunkedReaderAt) Close() error { return r.ra.Close() }

func (r *chunkedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.ra.Size() {
			r.report(off + int64(n))
			return n, io.EOF
		}
		if pos < r.off || pos >= r.off+int64(len(r.buf)) {
			size := int64(readChunk)
			if rest := r.ra.Size() - pos; rest < size {
				size = rest
			}
			if int64(cap(r.buf)) < size {
				r.buf = make([]byte, size)
			}
			m, err := r.ra.ReadAt(r.buf[:size], pos)
			r.buf, r.off = r.buf[:m], pos
			if m == 0 {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
		}
		n += copy(p[n:], r.buf[pos-r.off:])
	}
	r.report(off + int64(n))
	return n, nil
}

func (r *chunkedReaderAt) report(pos int64) {
	if r.progress == nil {
		return
	}
	if pos > r.read {
		r.read = pos
	}
	if time.Since(r.last) >= 200*time.Millisecond || r.read >= r.ra.Size() {
		r.last = time.Now()
		r.progress(r.read)
	}
}
