package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/log"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkingStore inspects every blob an archive import writes: blobs that are tar streams (plain or
// compressed) have their entry paths checked on the way in, so a layer that climbs out of the root with
// ".." is refused with a clear error before anything is unpacked, without a second read of the layer.
//
// It also unpacks layers while they stream in. Where an image's layers sit in the archive is only known
// from manifest.json or index.json, which come after the blobs, so the order is guessed: a layer.tar of a
// docker save archive is extracted on top of the one extracted before it, when its directory's v1 json
// (which comes just before it) names that one as parent, or when there is no json (archives written
// bottom layer first). Blobs of an OCI layout are not: exporters sort them by digest, so their order says
// nothing. A wrong guess costs only work: snapshots are named by the chain of what was really extracted,
// and Unpack applies whatever it does not find.
//
// It also makes the ingest refs unique to this import: archive.ImportIndex names them after the tar
// entries, so concurrent loads of archives with the same entry names would otherwise wait on each
// other's ingest locks.
type checkingStore struct {
	content.Store
	sn     snapshots.Snapshotter // nil: no unpacking on the way
	suffix string

	mu    sync.Mutex
	bad   map[digest.Digest]string
	chain []digest.Digest // diff IDs extracted so far, bottom first
	stop  bool            // a layer failed to extract: guessing further would only waste work
	// lastDir is the archive directory of the layer extracted last; parents maps a directory to its
	// parent's as its v1 json says.
	lastDir string
	parents map[string]string
	// last is closed once the blob written last has settled (its snapshot committed or dropped): the
	// next blob is extracted on the chain as it then stands.
	last chan struct{}

	// Commits run in the background, so the next blob streams in while containerd finishes (and syncs)
	// the last one; pending counts them and err keeps the first failure.
	pending sync.WaitGroup
	err     error

	// speculative is set where layers of unknown position may be extracted ahead (overlayfs); specs holds
	// those extractions by blob digest until the import places them.
	speculative bool
	specs       map[digest.Digest]*specLayer
	anySpec     bool
}

func newCheckingStore(cs content.Store, sn snapshots.Snapshotter) *checkingStore {
	last := make(chan struct{})
	close(last)
	return &checkingStore{Store: cs, sn: sn, suffix: "-" + randomID(), bad: map[digest.Digest]string{}, last: last,
		parents: map[string]string{}}
}

// wait waits for the commits under way and returns the first that failed.
func (c *checkingStore) wait() error {
	c.pending.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *checkingStore) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// Reads see every blob written so far committed.

func (c *checkingStore) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	c.pending.Wait()
	return c.Store.Info(ctx, d)
}

func (c *checkingStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	c.pending.Wait()
	return c.Store.ReaderAt(ctx, desc)
}

func (c *checkingStore) Walk(ctx context.Context, fn content.WalkFunc, filters ...string) error {
	c.pending.Wait()
	return c.Store.Walk(ctx, fn, filters...)
}

// problem is the reason blob d was refused, "" when it was fine (or not seen).
func (c *checkingStore) problem(d digest.Digest) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad[d]
}

// parent is the chain the layer in archive directory dir is extracted on, and whether to extract it.
func (c *checkingStore) parent(dir string) ([]digest.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.parents[dir]; ok && p != c.lastDir {
		return nil, false
	}
	return append([]digest.Digest(nil), c.chain...), c.sn != nil && !c.stop
}

// layerDir is the directory of a docker save layer ("<id>/layer.tar"), and whether name is one.
func layerDir(name string) (string, bool) {
	dir, ok := strings.CutSuffix(name, "/layer.tar")
	return dir, ok && dir != "" && !strings.Contains(dir, "/")
}

// noteParent records the parent a docker save v1 layer json ("<id>/json") names.
func (c *checkingStore) noteParent(name string, b []byte) {
	dir, ok := strings.CutSuffix(name, "/json")
	if !ok || dir == "" || strings.Contains(dir, "/") {
		return
	}
	var v1 struct {
		Parent string `json:"parent"`
	}
	if json.Unmarshal(b, &v1) != nil {
		return
	}
	c.mu.Lock()
	c.parents[dir] = v1.Parent
	c.mu.Unlock()
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
	c.mu.Lock()
	prev, mine := c.last, make(chan struct{})
	c.last = mine
	c.mu.Unlock()
	cw := &checkingWriter{store: c, ctx: ctx, prev: prev, settled: mine}
	name := strings.TrimPrefix(wo.Ref, "tar-")
	cw.teeWriter = newTeeWriter(w, loadBuffer, func(r io.Reader, abort <-chan struct{}) inspected {
		return c.inspect(ctx, r, name, prev, abort)
	})
	return cw, nil
}

// loadBuffer is how much of a blob is held while its extraction waits for the blob before it to settle
// (that is, for containerd to commit it).
const loadBuffer = 32 << 20

// ingestBuf is how much is read from (or written to) a pipe at once: every pipe read or write is a
// goroutine hand-off, and those are what an import spends its time on when they come every 32 KiB.
const ingestBuf = 1 << 20

// inspected is what the look at one blob found.
type inspected struct {
	problem string // why the blob must not be unpacked: a traversal entry
	// key is an active snapshot holding the blob extracted on chain, to be committed once the blob is.
	key   string
	chain []digest.Digest
	// diffID is the digest of the decompressed tar; "" for an uncompressed blob, whose own digest it is.
	diffID digest.Digest
	// existing is set when the snapshot for chain+guess was already there, so nothing was extracted:
	// it holds if the blob's digest turns out to be guess.
	existing digest.Digest
	dir      string // the layer's archive directory
	n        int64  // bytes seen
	// spec is set when key holds the blob extracted speculatively, on no parent (see speculate.go).
	spec *specLayer
}

// inspect reads a blob as it is written: if it is a tar stream its paths are checked and, when layers are
// being guessed, it is extracted into a new snapshot.
func (c *checkingStore) inspect(ctx context.Context, r io.Reader, name string, prev <-chan struct{}, abort <-chan struct{}) (out inspected) {
	cr := &countReader{r: r}
	defer func() { out.n = cr.n }()
	var in io.Reader = cr
	if strings.HasSuffix(name, "/json") {
		// Still path-checked below: a manifest may call any blob a layer.
		head, _ := io.ReadAll(io.LimitReader(cr, 1<<20))
		c.noteParent(name, head)
		in = io.MultiReader(bytes.NewReader(head), cr)
	}
	ds, err := compression.DecompressStream(in)
	if err != nil {
		return out
	}
	defer ds.Close()
	br := bufio.NewReaderSize(ds, 64<<10)
	dir, isLayer := layerDir(name)
	compressed := ds.GetCompression() != compression.Uncompressed
	if c.sn == nil || !looksLikeTar(br) {
		out.problem = pathProblem(br)
		return out
	}
	if !isLayer {
		return c.speculate(ctx, br, compressed)
	}
	select {
	case <-prev:
	case <-ctx.Done():
	case <-abort:
	}
	chain, extract := c.parent(dir)
	if ctx.Err() != nil {
		out.problem = pathProblem(br)
		return out
	}
	if !extract {
		return c.speculate(ctx, br, compressed)
	}
	out.dir = dir
	guess := digestFromRef(name)
	if guess != "" && !compressed {
		if _, err := c.sn.Stat(ctx, identity.ChainID(append(chain, guess)).String()); err == nil {
			out.problem = pathProblem(br)
			out.existing, out.chain = guess, chain
			return out
		}
	}
	parent := ""
	if len(chain) > 0 {
		parent = identity.ChainID(chain).String()
	}
	key := extractKey("berth-load")
	mounts, err := c.sn.Prepare(ctx, key, parent)
	if err != nil {
		log.G(ctx).WithError(err).Debug("load: cannot prepare a snapshot to unpack into; left to Unpack")
		c.halt()
		out.problem = pathProblem(br)
		return out
	}
	problem, diffID, applyErr := extractChecked(br, compressed, func(r io.Reader) error { return applyTar(ctx, mounts, r) })
	out.problem = problem
	if applyErr != nil || out.problem != "" {
		if applyErr != nil && out.problem == "" {
			log.G(ctx).WithError(applyErr).Debug("load: layer did not extract on the way in; left to Unpack")
		}
		c.halt()
		c.remove(ctx, key)
		return out
	}
	out.key, out.chain, out.diffID = key, chain, diffID
	return out
}

// extractChecked runs apply on the decompressed layer in br while checking its paths on the same bytes,
// through a pipe fed in large pieces (apply reads 32 KiB at a time, and a goroutine hand-off per read
// costs more than the check). diffID is the digest of the decompressed tar when it was compressed; err
// is apply's or the read's failure.
func extractChecked(br *bufio.Reader, compressed bool, apply func(io.Reader) error) (problem string, diffID digest.Digest, err error) {
	cpr, cpw := io.Pipe()
	checked := make(chan string, 1)
	go func() {
		checked <- pathProblem(bufio.NewReaderSize(cpr, ingestBuf))
		_, _ = io.Copy(io.Discard, cpr)
	}()
	cbw := bufio.NewWriterSize(cpw, ingestBuf)
	var src io.Reader = io.TeeReader(br, cbw)
	var h hash.Hash
	if compressed {
		h = sha256.New()
		src = io.TeeReader(src, h)
	}
	err = apply(src)
	// The end-of-archive blocks and padding: the digest and the check cover them too.
	if _, rerr := io.Copy(io.Discard, src); err == nil {
		err = rerr
	}
	if ferr := cbw.Flush(); err == nil {
		err = ferr
	}
	cpw.Close()
	problem = <-checked
	if h != nil {
		diffID = digest.NewDigest(digest.SHA256, h)
	}
	return problem, diffID, err
}

func (c *checkingStore) halt() {
	c.mu.Lock()
	c.stop = true
	c.mu.Unlock()
}

func (c *checkingStore) remove(ctx context.Context, key string) {
	if err := c.sn.Remove(context.WithoutCancel(ctx), key); err != nil {
		log.G(ctx).WithError(err).WithField("key", key).Warn("load: cannot remove extraction snapshot")
	}
}

// settle commits (or drops) what inspect extracted, now that the blob is stored with digest dgst.
func (c *checkingStore) settle(ctx context.Context, r inspected, stored bool, size int64, dgst digest.Digest) {
	if r.spec != nil {
		c.keepSpec(ctx, r, stored && r.problem == "" && r.n == size && dgst != "", dgst)
		return
	}
	if r.key == "" && r.existing == "" {
		return
	}
	ok := stored && r.problem == "" && r.n == size && dgst != ""
	diffID := r.diffID
	if diffID == "" {
		diffID = dgst
	}
	if r.existing != "" {
		ok = ok && dgst == r.existing
	} else if ok {
		err := c.sn.Commit(ctx, identity.ChainID(append(r.chain, diffID)).String(), r.key)
		switch {
		case err == nil:
		case isAlreadyExists(err):
			c.remove(ctx, r.key)
		default:
			log.G(ctx).WithError(err).Debug("load: cannot commit extraction snapshot; left to Unpack")
			c.remove(ctx, r.key)
			ok = false
		}
	} else {
		c.remove(ctx, r.key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.stop = true
		return
	}
	c.chain = append(r.chain, diffID)
	c.lastDir = r.dir
}

// pathProblem reports a traversal entry in r if r is a tar stream; anything else is not its business.
func pathProblem(r *bufio.Reader) string {
	var te *traversalError
	if err := checkTar(skipReader{r}); errors.As(err, &te) {
		return te.Error()
	}
	return ""
}

// skipReader lets tar.Reader skip entry bodies by seeking (discarding from the buffer) instead of
// copying them out.
type skipReader struct{ *bufio.Reader }

func (s skipReader) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || off < 0 {
		return 0, errors.New("skipReader: only forward relative seeks")
	}
	if off == 0 {
		return 0, nil
	}
	// Offsets are relative to the first Seek: tar.Reader only subtracts them.
	n, err := s.Discard(int(off))
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return int64(n), err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type checkingWriter struct {
	*teeWriter[inspected]
	store *checkingStore
	ctx   context.Context
	// settled is closed once this blob's extraction is committed or dropped, and prev's is closed (so
	// that waiting on it waits for every blob before).
	prev      <-chan struct{}
	settled   chan struct{}
	committed bool
}

// Commit returns at once: containerd's commit, and with it the snapshot's, run in the background (see
// checkingStore.wait). A blob that fails to commit fails the import.
func (w *checkingWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	r := w.finish(false)
	w.committed = true
	c := w.store
	c.pending.Add(1)
	go func() {
		defer c.pending.Done()
		defer func() {
			<-w.prev
			close(w.settled)
		}()
		err := w.Writer.Commit(ctx, size, expected, opts...)
		stored := err == nil || isAlreadyExists(err)
		if r.problem != "" && (stored || errors.Is(err, io.EOF)) {
			c.mu.Lock()
			c.bad[w.Writer.Digest()] = r.problem
			c.mu.Unlock()
		}
		c.settle(ctx, r, stored, size, w.Writer.Digest())
		_ = w.Writer.Close()
		if !stored {
			c.fail(fmt.Errorf("failed to ingest blob: %w", err))
		}
	}()
	return nil
}

func (w *checkingWriter) Close() error {
	if w.committed {
		// The background commit closes the writer.
		return nil
	}
	w.committed = true
	r := w.finish(true)
	if r.key != "" {
		// Never committed: the extraction has no blob to stand for.
		w.store.remove(w.ctx, r.key)
	}
	w.store.halt()
	go func() {
		<-w.prev
		close(w.settled)
	}()
	return w.Writer.Close()
}
