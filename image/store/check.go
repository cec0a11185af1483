package store

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/opencontainers/go-digest"
)

// checkingStore inspects every blob an archive import writes: blobs that are tar streams (plain or
// compressed) have their entry paths checked on the way in, so a layer that climbs out of the root with
// ".." is refused with a clear error before anything is unpacked, without a second read of the layer.
//
// It also makes the ingest refs unique to this import: archive.ImportIndex names them after the tar
// entries, so concurrent loads of archives with the same entry names would otherwise wait on each
// other's ingest locks.
type checkingStore struct {
	content.Store
	suffix string

	mu  sync.Mutex
	bad map[digest.Digest]string
}

func newCheckingStore(cs content.Store) *checkingStore {
	return &checkingStore{Store: cs, suffix: "-" + randomID(), bad: map[digest.Digest]string{}}
}

// problem is the reason blob d was refused, "" when it was fine (or not seen).
func (c *checkingStore) problem(d digest.Digest) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad[d]
}

func (c *checkingStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	if wo.Ref != "" {
		opts = append(opts, content.WithRef(wo.Ref+c.suffix))
	}
	w, err := c.Store.Writer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	res := make(chan string, 1)
	go func() {
		res <- pathProblem(pr)
		_, _ = io.Copy(io.Discard, pr)
	}()
	return &checkingWriter{Writer: w, pw: pw, res: res, store: c}, nil
}

// pathProblem reports a traversal entry in r if r is a tar stream; anything else is not its business.
func pathProblem(r io.Reader) string {
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return ""
	}
	defer ds.Close()
	if err := CheckTar(ds); err != nil && strings.Contains(err.Error(), "escapes the root filesystem") {
		return err.Error()
	}
	return ""
}

type checkingWriter struct {
	content.Writer
	pw    *io.PipeWriter
	res   chan string
	store *checkingStore
	once  sync.Once
}

func (w *checkingWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	if n > 0 {
		_, _ = w.pw.Write(p[:n])
	}
	return n, err
}

func (w *checkingWriter) finish() string {
	var msg string
	w.once.Do(func() {
		w.pw.Close()
		msg = <-w.res
	})
	return msg
}

func (w *checkingWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	msg := w.finish()
	err := w.Writer.Commit(ctx, size, expected, opts...)
	if msg != "" && (err == nil || errors.Is(err, io.EOF) || isAlreadyExists(err)) {
		w.store.mu.Lock()
		w.store.bad[w.Writer.Digest()] = msg
		w.store.mu.Unlock()
	}
	return err
}

func (w *checkingWriter) Close() error {
	w.once.Do(func() {
		w.pw.CloseWithError(io.ErrClosedPipe)
		<-w.res
	})
	return w.Writer.Close()
}
