package builder

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
)

// A context is spooled, not extracted, as it arrives: the decompressed tar is kept (in memory as far as
// a shared budget allows, spoolstore.go) while its headers are indexed and its files hashed, in one
// pass. Cache keys of COPY/ADD come from the index, so a build whose steps all hit the cache never
// writes the context's files one by one; the spool is extracted (once, by containerd's archive package,
// confined to the context directory) when a step first needs the files themselves.

// maxKept bounds the files kept in memory while spooling (Dockerfile candidates and .dockerignore).
const maxKept = 16 << 20

// spoolBuf is the size of the spool's read buffers.
const spoolBuf = 256 << 10

type ctxEntry struct {
	hdr *tar.Header
	sum string
}

type spooled struct {
	store   *spoolStore
	entries map[string]*ctxEntry
	kept    map[string][]byte
	// removed are paths .dockerignore drops from the context (the Dockerfile, .dockerignore).
	removed []string

	once sync.Once
	err  error
}

// spoolContext reads the (compressed) tar r into bc's spool, indexing it; names are the "/"-rooted
// paths whose contents are kept in memory.
func spoolContext(ctx context.Context, bc *buildContext, r io.Reader, names ...string) error {
	// A large read buffer: every read is a system call.
	ds, err := compression.DecompressStream(bufio.NewReaderSize(r, spoolBuf))
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage("failed to read the build context: " + err.Error())
	}
	defer ds.Close()
	store := &spoolStore{path: filepath.Join(bc.scratch, "context.tar")}
	sp := &spooled{store: store, entries: map[string]*ctxEntry{}, kept: map[string][]byte{}}
	// The spool belongs to bc from here on: bc.close releases it whether or not the context is complete.
	bc.spool = sp
	buf := make([]byte, spoolBuf)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	hashes := newHashAside()
	defer hashes.wait()
	tr := tar.NewReader(io.TeeReader(ds, store))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return classifyExtract(ctx, err)
		}
		name := path.Clean("/" + h.Name)
		e := &ctxEntry{hdr: h}
		sp.entries[name] = e
		delete(sp.kept, name)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if !want[name] && h.Size >= hashAsideMin && !isSparse(h) {
			// Hashed aside, from the spool's memory, while the next files arrive.
			start := store.n
			if _, err := io.CopyBuffer(writerOnly{io.Discard}, tr, buf); err != nil {
				return classifyExtract(ctx, err)
			}
			if ps := store.pieces(start, h.Size); ps != nil {
				hashes.add(e, ps)
				continue
			}
			sr, err := store.section(start, h.Size)
			if err != nil {
				return err
			}
			d := sha256.New()
			if _, err := io.CopyBuffer(d, sr, buf); err != nil {
				return err
			}
			e.sum = hex.EncodeToString(d.Sum(nil))
			continue
		}
		d := sha256.New()
		var w io.Writer = d
		var keep *strings.Builder
		if want[name] && h.Size <= maxKept {
			keep = &strings.Builder{}
			w = io.MultiWriter(d, keep)
		}
		if _, err := io.CopyBuffer(w, tr, buf); err != nil {
			return classifyExtract(ctx, err)
		}
		e.sum = hex.EncodeToString(d.Sum(nil))
		if keep != nil {
			sp.kept[name] = []byte(keep.String())
		}
	}
	// The end-of-archive blocks belong to the spool too.
	if _, err := io.CopyBuffer(store, ds, buf); err != nil {
		return classifyExtract(ctx, err)
	}
	hashes.wait()
	return store.finish()
}

// hashAsideMin is the size from which a file is hashed on the side goroutine: below it, handing it over
// costs more than hashing it.
const hashAsideMin = 64 << 10

// hashAside hashes files on a goroutine of its own, so that hashing a large file and reading the next
// from the socket run at once (the client is not left waiting on a full socket meanwhile). Jobs are the
// spool's memory pieces, read without a copy.
type hashAside struct {
	jobs chan hashJob
	done chan struct{}
	once sync.Once
}

type hashJob struct {
	e      *ctxEntry
	pieces [][]byte
}

func newHashAside() *hashAside {
	h := &hashAside{jobs: make(chan hashJob, 256), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for j := range h.jobs {
			d := sha256.New()
			for _, p := range j.pieces {
				d.Write(p)
			}
			j.e.sum = hex.EncodeToString(d.Sum(nil))
		}
	}()
	return h
}

func (h *hashAside) add(e *ctxEntry, pieces [][]byte) { h.jobs <- hashJob{e: e, pieces: pieces} }

// wait returns once every file added is hashed; nothing may be added after it.
func (h *hashAside) wait() {
	h.once.Do(func() { close(h.jobs) })
	<-h.done
}

// isSparse tells a PAX sparse file, whose bytes in the archive are not its contents.
func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// writerOnly hides io.Discard's ReadFrom, so that io.CopyBuffer reads with the large buffer given.
type writerOnly struct{ io.Writer }

// extracted makes the context's files exist under bc.dir (a no-op for a context extracted eagerly).
func (bc *buildContext) extracted(ctx context.Context) error {
	sp := bc.spool
	if sp == nil {
		return nil
	}
	sp.once.Do(func() {
		defer sp.store.release()
		r, err := sp.store.reader()
		if err != nil {
			sp.err = err
			return
		}
		_, err = archive.Apply(ctx, bc.dir, r, archive.WithConvertWhiteout(func(*tar.Header, string) (bool, error) { return true, nil }))
		if err != nil {
			sp.err = classifyExtract(ctx, err)
			return
		}
		for _, p := range sp.removed {
			clean := path.Clean("/" + p)
			if parent, err := securejoin.SecureJoin(bc.dir, path.Dir(clean)); err == nil {
				os.Remove(filepath.Join(parent, path.Base(clean)))
			}
		}
	})
	return sp.err
}

// errUseDisk says the index cannot answer (a symlink on the way); the caller extracts and looks at
// the files.
var errUseDisk = errdefs.ErrNotImplemented.WithMessage("resolve on disk")

// resolveIndex is resolveSources over the spool's index: the same sources, rel paths and file modes,
// with cache hashes computed from headers and content sums.
func (sp *spooled) resolveIndex(root, p string) ([]source, error) {
	clean := path.Clean("/" + filepath.ToSlash(p))
	notFound := errNotFound(p)
	for q := clean; q != "/"; q = path.Dir(q) {
		if e, ok := sp.entries[q]; ok && e.hdr.Typeflag == tar.TypeSymlink {
			return nil, errUseDisk
		}
	}
	keys := make([]string, 0, len(sp.entries))
	for k := range sp.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []source
	if !strings.ContainsAny(clean, "*?[") {
		if clean == "/" || sp.isDir(clean, keys) {
			s, err := sp.dirSource(root, clean, keys)
			if err != nil {
				return nil, err
			}
			return []source{s}, nil
		}
		e, ok := sp.entries[clean]
		if !ok {
			return nil, notFound
		}
		s, err := sp.fileSource(root, clean, e)
		if err != nil {
			return nil, err
		}
		return []source{s}, nil
	}
	pattern := strings.TrimPrefix(clean, "/")
	var skip string
	for _, k := range keys {
		if skip != "" && strings.HasPrefix(k, skip) {
			continue
		}
		rel := strings.TrimPrefix(k, "/")
		if ok, _ := path.Match(pattern, rel); !ok {
			continue
		}
		var s source
		var err error
		if sp.isDir(k, keys) {
			s, err = sp.dirSource(root, k, keys)
			skip = k + "/"
		} else {
			s, err = sp.fileSource(root, k, sp.entries[k])
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, notFound
	}
	return out, nil
}

func (sp *spooled) isDir(p string, keys []string) bool {
	if e, ok := sp.entries[p]; ok {
		return e.hdr.Typeflag == tar.TypeDir
	}
	i := sort.SearchStrings(keys, p+"/")
	return i < len(keys) && strings.HasPrefix(keys[i], p+"/")
}

func (sp *spooled) fileSource(root, p string, e *ctxEntry) (source, error) {
	if e.hdr.Typeflag == tar.TypeSymlink {
		return source{}, errUseDisk
	}
	s := source{root: root, rel: strings.TrimPrefix(p, "/"), fi: e.hdr.FileInfo()}
	s.hash = "file:" + headerHash(e, ".")
	return s, nil
}

func (sp *spooled) dirSource(root, p string, keys []string) (source, error) {
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		rel = "."
	}
	fi := os.FileInfo(dirInfo{})
	var lines []string
	if e, ok := sp.entries[p]; ok {
		fi = e.hdr.FileInfo()
		lines = append(lines, headerHash(e, "."))
	}
	prefix := strings.TrimSuffix(p, "/") + "/"
	for i := sort.SearchStrings(keys, prefix); i < len(keys) && strings.HasPrefix(keys[i], prefix); i++ {
		e := sp.entries[keys[i]]
		lines = append(lines, headerHash(e, strings.TrimPrefix(keys[i], prefix)))
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return source{root: root, rel: rel, fi: fi, hash: "dir:" + hex.EncodeToString(sum[:])}, nil
}

// headerHash is a file's cache identity from its tar header and content sum: name, mode, owner, size,
// type, link target and content; never times.
func headerHash(e *ctxEntry, name string) string {
	h := e.hdr
	d := sha256.New()
	io.WriteString(d, strings.Join([]string{"name=" + name, "mode=" + itoa8(h.Mode), "uid=" + itoa8(int64(h.Uid)), "gid=" + itoa8(int64(h.Gid)),
		"size=" + itoa8(h.Size), "type=" + string(h.Typeflag), "link=" + h.Linkname, "content=" + e.sum}, "\x00"))
	return hex.EncodeToString(d.Sum(nil))
}

func itoa8(n int64) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%8)}, b...)
		n /= 8
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// dirInfo stands for a directory the archive implies but has no entry for.
type dirInfo struct{ os.FileInfo }

func (dirInfo) IsDir() bool        { return true }
func (dirInfo) Mode() os.FileMode  { return os.ModeDir | 0o755 }
func (dirInfo) Name() string       { return "" }
func (dirInfo) Size() int64        { return 0 }
func (dirInfo) ModTime() time.Time { return time.Time{} }
func (dirInfo) Sys() any           { return nil }
