package store

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"sync"

	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/log"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayerUnpacker unpacks an image's layers while their blobs are being written (as a pull fetches them):
// its Ingester tees each layer blob into an extraction on top of the layer below, once that one is
// unpacked, so unpacking overlaps downloading and never reads a blob back. A layer whose blob is not
// written through it (already stored), or that fails to extract, is left to Unpack, and so is
// everything above it; Unpack after the fetch is still what makes an image complete.
type LayerUnpacker struct {
	s       *Store
	cs      content.Store
	layers  []ocispec.Descriptor
	diffIDs []digest.Digest
	first   map[digest.Digest]int // a blob's lowest position in the image

	settled []chan struct{} // closed once layer i's snapshot is there or known not to come
	mu      sync.Mutex
	ok      []bool
	applied map[digest.Digest]bool
}

// PullUnpacker returns an unpacker for one pull: its Ingest is what distribution.Fetch calls once the
// manifest and config are stored.
func (s *Store) PullUnpacker() *LayerUnpacker { return &LayerUnpacker{s: s} }

// Ingest prepares to unpack the image manifest describes (its manifest and config must be stored) and
// returns the ingester its layer blobs are to be written through, and what to call when they all are.
// An image it cannot read is left whole to Unpack (nil ingester). ctx should carry the fetch's lease.
func (u *LayerUnpacker) Ingest(ctx context.Context, manifest ocispec.Descriptor) (content.Ingester, func(), error) {
	if err := u.init(u.s.nsctx(ctx), manifest); err != nil {
		log.G(ctx).WithError(err).Debug("pull: not unpacking on the way; left to Unpack")
		return nil, nil, nil
	}
	return unpackingIngester{u}, u.Close, nil
}

func (u *LayerUnpacker) init(ctx context.Context, manifest ocispec.Descriptor) error {
	s := u.s
	mi, err := s.manifest(ctx, manifest)
	if err != nil {
		return err
	}
	diffIDs := mi.parsed.RootFS.DiffIDs
	if len(diffIDs) != len(mi.layers) {
		// Unpack reports this properly.
		diffIDs = nil
	}
	u.cs, u.layers, u.diffIDs = s.client.ContentStore(), mi.layers, diffIDs
	u.first, u.applied = map[digest.Digest]int{}, map[digest.Digest]bool{}
	u.settled = make([]chan struct{}, len(mi.layers))
	u.ok = make([]bool, len(mi.layers))
	for i := range u.settled {
		u.settled[i] = make(chan struct{})
	}
	for i, l := range mi.layers {
		if diffIDs == nil {
			u.settle(i, false)
			continue
		}
		if _, err := s.sn().Stat(ctx, identity.ChainID(diffIDs[:i+1]).String()); err == nil {
			u.settle(i, true)
			continue
		}
		if _, dup := u.first[l.Digest]; dup {
			// Its blob is written once, for the lower position.
			u.settle(i, false)
			continue
		}
		u.first[l.Digest] = i
		if _, err := u.cs.Info(ctx, l.Digest); err == nil {
			// Stored already: no writer will come for it.
			u.settle(i, false)
		}
	}
	return nil
}

// Applied reports whether the layer with blob d was unpacked through the ingester.
func (u *LayerUnpacker) Applied(d digest.Digest) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.applied[d]
}

func (u *LayerUnpacker) settle(i int, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	select {
	case <-u.settled[i]:
		return
	default:
	}
	u.ok[i] = ok
	close(u.settled[i])
}

// Close gives up on layers never written, so nothing waits on them.
func (u *LayerUnpacker) Close() {
	for i := range u.settled {
		u.settle(i, false)
	}
}

// wait blocks until layer i is settled; it reports whether its snapshot is there.
func (u *LayerUnpacker) wait(ctx context.Context, i int, abort <-chan struct{}) bool {
	select {
	case <-u.settled[i]:
	case <-ctx.Done():
		return false
	case <-abort:
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ok[i]
}

type unpackingIngester struct{ u *LayerUnpacker }

func (ui unpackingIngester) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	u := ui.u
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	w, err := u.cs.Writer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	i, ok := u.first[wo.Desc.Digest]
	if !ok || u.diffIDs == nil {
		return w, nil
	}
	tw := &pullWriter{u: u, i: i, ctx: ctx}
	tw.teeWriter = newTeeWriter(w, pullBuffer, func(r io.Reader, abort <-chan struct{}) extracted {
		return u.extract(ctx, i, r, abort)
	})
	return tw, nil
}

// pullBuffer is how much of a layer is held in memory while its extraction waits for the layer below,
// so that meanwhile its download and containerd's ingest of it go on at full speed.
const pullBuffer = 16 << 20

// extracted is what extract did with one layer blob.
type extracted struct {
	key    string        // active snapshot holding the layer, to commit once the blob is
	diffID digest.Digest // of the decompressed tar; "" when the blob is not compressed
	n      int64         // blob bytes seen
	err    error
}

// extract waits for the layer below, then extracts the blob streaming through r into a snapshot on it.
func (u *LayerUnpacker) extract(ctx context.Context, i int, r io.Reader, abort <-chan struct{}) (out extracted) {
	cr := &countReader{r: r}
	defer func() { out.n = cr.n }()
	if i > 0 && !u.wait(ctx, i-1, abort) {
		return out
	}
	ds, err := compression.DecompressStream(cr)
	if err != nil {
		out.err = err
		return out
	}
	defer ds.Close()
	sn := u.s.sn()
	key := extractKey(identity.ChainID(u.diffIDs[:i+1]).String())
	parent := ""
	if i > 0 {
		parent = identity.ChainID(u.diffIDs[:i]).String()
	}
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		out.err = err
		return out
	}
	var src io.Reader = ds
	var h hash.Hash
	if ds.GetCompression() != compression.Uncompressed {
		h = sha256.New()
		src = io.TeeReader(ds, h)
	}
	err = applyTar(ctx, mounts, src)
	if err == nil {
		_, err = io.Copy(io.Discard, src)
	}
	if err != nil {
		out.err = err
		u.s.removeSnapshot(ctx, key)
		return out
	}
	out.key = key
	if h != nil {
		out.diffID = digest.NewDigest(digest.SHA256, h)
	}
	return out
}

func (s *Store) removeSnapshot(ctx context.Context, key string) {
	if err := s.sn().Remove(context.WithoutCancel(ctx), key); err != nil {
		log.G(ctx).WithError(err).WithField("key", key).Warn("cannot remove extraction snapshot")
	}
}

// pullWriter extracts a layer as it downloads.
type pullWriter struct {
	*teeWriter[extracted]
	u    *LayerUnpacker
	i    int
	ctx  context.Context
	done bool
}

func (w *pullWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	r := w.finish(false)
	err := w.Writer.Commit(ctx, size, expected, opts...)
	w.done = true
	u, i := w.u, w.i
	if r.key == "" {
		if r.err != nil {
			log.G(ctx).WithError(r.err).WithField("layer", u.layers[i].Digest).Debug("layer not unpacked on the way; left to Unpack")
		}
		u.settle(i, false)
		return err
	}
	stored := err == nil || isAlreadyExists(err)
	diffID := r.diffID
	if diffID == "" {
		// Not compressed: the tar is the blob, whose digest the commit just verified.
		diffID = expected
	}
	if !stored || expected == "" || r.n != size || diffID != u.diffIDs[i] {
		u.s.removeSnapshot(ctx, r.key)
		u.settle(i, false)
		return err
	}
	cerr := u.s.sn().Commit(ctx, identity.ChainID(u.diffIDs[:i+1]).String(), r.key)
	switch {
	case cerr == nil:
		u.mu.Lock()
		u.applied[u.layers[i].Digest] = true
		u.mu.Unlock()
		u.settle(i, true)
	case isAlreadyExists(cerr):
		u.s.removeSnapshot(ctx, r.key)
		u.settle(i, true)
	default:
		log.G(ctx).WithError(cerr).Debug("cannot commit extraction snapshot; left to Unpack")
		u.s.removeSnapshot(ctx, r.key)
		u.settle(i, false)
	}
	return err
}

func (w *pullWriter) Close() error {
	r := w.finish(true)
	if !w.done {
		w.done = true
		if r.key != "" {
			w.u.s.removeSnapshot(w.ctx, r.key)
		}
		w.u.settle(w.i, false)
	}
	return w.Writer.Close()
}
