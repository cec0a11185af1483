package builder

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

// A spooled context is kept in memory, in chunks drawn from a pool shared by all builds, as far as the
// pool's budget allows; the rest goes to a file. Writing the context to a file costs as much as hashing
// it (the kernel copies it into fresh page-cache pages and frees them when the file is removed), and a
// warm build never reads it back. The pool keeps its chunks between builds, because faulting in fresh
// memory costs more than the copy itself; it lets them go after spoolIdle without a build.

const (
	// spoolChunk is the size of one chunk of memory.
	spoolChunk = 1 << 20
	// spoolMemBudget bounds the memory all builds' spools hold together.
	spoolMemBudget = 128 << 20
	// spoolIdle is how long the pool keeps free chunks after the last build returned its own.
	spoolIdle = 30 * time.Second
)

type chunkPool struct {
	mu sync.Mutex
	// budget and inUse count chunks.
	budget, inUse int
	free          [][]byte
	idle          time.Duration
	timer         *time.Timer
}

var spoolChunks = &chunkPool{budget: spoolMemBudget / spoolChunk, idle: spoolIdle}

// get returns an empty chunk, or nil when the budget is spent.
func (p *chunkPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inUse >= p.budget {
		return nil
	}
	p.inUse++
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free = p.free[:n-1]
		return c[:0]
	}
	return make([]byte, 0, spoolChunk)
}

func (p *chunkPool) put(cs [][]byte) {
	if len(cs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse -= len(cs)
	for _, c := range cs {
		p.free = append(p.free, c[:0])
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idle, p.drop)
	} else {
		p.timer.Reset(p.idle)
	}
}

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

	mu       sync.Mutex
	released bool
}

func (s *spoolStore) Write(p []byte) (int, error) {
	n := len(p)
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

// release gives the chunks back and removes the file; it may be called more than once.
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
