package builder

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

// A spooled context is kept in memory as far as a budget shared by all builds allows; the rest goes to
// a file. Writing the context to a file costs as much as hashing it (the kernel copies it into fresh
// page-cache pages, allocates blocks, and frees it all when the file is removed), and a warm build never
// reads it back. The memory is Go memory in 2 MB chunks kept for the next build (touching fresh memory
// costs more than the copy on a virtual machine) and let go after spoolIdle without one, so an idle
// daemon holds nothing. It is ordinary Go memory on purpose: a reader that outlives its build then
// reads stale bytes at worst, where unmapped memory would take the daemon down.

const (
	// spoolChunk is the size of one chunk of memory: one huge page.
	spoolChunk = 2 << 20
	// spoolMemBudget bounds the memory all builds' spools hold together.
	spoolMemBudget = 128 << 20
	// spoolIdle is how long chunks are kept mapped after the last build gave its own back.
	spoolIdle = time.Minute
)

type chunkPool struct {
	mu sync.Mutex
	// budget and inUse count chunks.
	budget, inUse int
	// free are mapped chunks kept for the next build, until idle passes without one.
	free  [][]byte
	idle  time.Duration
	timer *time.Timer
}

var spoolChunks = &chunkPool{budget: spoolMemBudget / spoolChunk, idle: spoolIdle}

// get returns an empty chunk, or nil when the budget is spent or memory cannot be had cheaply.
func (p *chunkPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inUse >= p.budget {
		return nil
	}
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free = p.free[:n-1]
		p.inUse++
		return c[:0]
	}
	p.inUse++
	return make([]byte, 0, spoolChunk)
}

// put takes chunks back for later builds.
func (p *chunkPool) put(cs [][]byte) {
	if len(cs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse -= len(cs)
	p.free = append(p.free, cs...)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idle, p.drop)
	} else {
		p.timer.Reset(p.idle)
	}
}

// drop lets the free chunks go.
func (p *chunkPool) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = nil
}

// spoolStore is where a context's bytes go as they arrive: memory chunks, then the overflow file at path.
type spoolStore struct {
	path string
	// pool is where chunks come from (spoolChunks when nil).
	pool   *chunkPool
	chunks [][]byte
	file   *os.File
	fw     *bufio.Writer
	// full is set once the pool refused a chunk: everything after goes to the file, in order.
	full bool
	// n counts the bytes written, mem those of them in chunks (the first mem bytes).
	n, mem int64

	mu       sync.Mutex
	released bool
}

func (s *spoolStore) Write(p []byte) (int, error) {
	n := len(p)
	s.n += int64(n)
	for len(p) > 0 && !s.full {
		last := len(s.chunks) - 1
		if last < 0 || len(s.chunks[last]) == cap(s.chunks[last]) {
			c := s.chunkPool().get()
			if c == nil {
				s.full = true
				break
			}
			s.chunks = append(s.chunks, c)
			last++
		}
		c := s.chunks[last]
		k := copy(c[len(c):cap(c)], p)
		s.chunks[last] = c[:len(c)+k]
		s.mem += int64(k)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if s.file == nil {
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
		if err != nil {
			return n - len(p), err
		}
		s.file, s.fw = f, bufio.NewWriterSize(f, 256<<10)
	}
	if _, err := s.fw.Write(p); err != nil {
		return n - len(p), err
	}
	return n, nil
}

func (s *spoolStore) chunkPool() *chunkPool {
	if s.pool == nil {
		return spoolChunks
	}
	return s.pool
}

// finish flushes what is buffered for the file.
func (s *spoolStore) finish() error {
	if s.fw == nil {
		return nil
	}
	return s.fw.Flush()
}

// pieces are the chunk slices holding bytes [off, off+size) of the spool, or nil when some of them are
// in the file. Bytes once written never change, so the pieces may be read while writing goes on.
func (s *spoolStore) pieces(off, size int64) [][]byte {
	if off+size > s.mem {
		return nil
	}
	var out [][]byte
	for i := off / spoolChunk; size > 0; i++ {
		c := s.chunks[i]
		lo := off - i*spoolChunk
		hi := min(int64(len(c)), lo+size)
		out = append(out, c[lo:hi])
		size -= hi - lo
		off += hi - lo
	}
	return out
}

// section reads bytes [off, off+size) of the spool back, from memory or the file.
func (s *spoolStore) section(off, size int64) (io.Reader, error) {
	if ps := s.pieces(off, size); ps != nil {
		return piecesReader(ps), nil
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	var rs []io.Reader
	if off < s.mem {
		rs = append(rs, piecesReader(s.pieces(off, s.mem-off)))
		size -= s.mem - off
		off = s.mem
	}
	return io.MultiReader(append(rs, io.NewSectionReader(s.file, off-s.mem, size))...), nil
}

func piecesReader(ps [][]byte) io.Reader {
	rs := make([]io.Reader, 0, len(ps))
	for _, p := range ps {
		rs = append(rs, bytes.NewReader(p))
	}
	return io.MultiReader(rs...)
}

// reader reads the spool from the beginning; it must not outlive release.
func (s *spoolStore) reader() (io.Reader, error) {
	rs := make([]io.Reader, 0, len(s.chunks)+1)
	for _, c := range s.chunks {
		rs = append(rs, bytes.NewReader(c))
	}
	if s.file != nil {
		if _, err := s.file.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		rs = append(rs, s.file)
	}
	return io.MultiReader(rs...), nil
}

// release gives the chunks back and removes the file; it may be called more than once. Nothing read
// from the chunks may be used after it.
func (s *spoolStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	s.chunkPool().put(s.chunks)
	s.chunks = nil
	if s.file != nil {
		s.file.Close()
		os.Remove(s.path)
	}
}
