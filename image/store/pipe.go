package store

import (
	"io"
	"sync"
)

// bufPipe is an in-memory pipe that holds up to limit bytes before its writer waits. A pull writes a layer
// to containerd and to its extraction at once; the extraction of a layer waits for the layer below, and
// with a synchronous pipe that wait would also stall the download and containerd's ingest of the layer.
type bufPipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks [][]byte // unread data, each in the pooled buffer at the same index of bufs
	bufs   []*[]byte
	n      int
	limit  int
	err    error // set by the writer's close: io.EOF when clean
	rerr   error // set when the reader gives up
}

func newBufPipe(limit int) *bufPipe {
	p := &bufPipe{limit: limit}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// pipeChunk is the size of the pooled buffers a bufPipe holds data in: fresh memory for every write
// would cost a page fault per page, which on a virtual machine is more than the copy itself.
const pipeChunk = 1 << 20

var pipeChunks = sync.Pool{New: func() any { b := make([]byte, pipeChunk); return &b }}

// Write copies b in; it waits while the pipe holds limit bytes or more.
func (p *bufPipe) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		bp := pipeChunks.Get().(*[]byte)
		c := (*bp)[:copy(*bp, b)]
		b = b[len(c):]
		p.mu.Lock()
		for p.n >= p.limit && p.rerr == nil {
			p.cond.Wait()
		}
		err := p.rerr
		if err == nil && p.err != nil {
			err = io.ErrClosedPipe
		}
		if err != nil {
			p.mu.Unlock()
			pipeChunks.Put(bp)
			return total - len(b) - len(c), err
		}
		p.chunks = append(p.chunks, c)
		p.bufs = append(p.bufs, bp)
		p.n += len(c)
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	return total, nil
}

// CloseWithError ends the stream: the reader gets err (io.EOF if nil) once it has read what is held.
func (p *bufPipe) CloseWithError(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// CloseRead makes later and waiting writes fail, and drops what is held.
func (p *bufPipe) CloseRead() {
	p.mu.Lock()
	p.rerr = io.ErrClosedPipe
	for _, bp := range p.bufs {
		pipeChunks.Put(bp)
	}
	p.chunks, p.bufs, p.n = nil, nil, 0
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *bufPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.chunks) == 0 && p.err == nil && p.rerr == nil {
		p.cond.Wait()
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	if len(p.chunks) == 0 {
		return 0, p.err
	}
	n := 0
	for n < len(b) && len(p.chunks) > 0 {
		c := copy(b[n:], p.chunks[0])
		n += c
		if c == len(p.chunks[0]) {
			pipeChunks.Put(p.bufs[0])
			p.chunks[0], p.bufs[0] = nil, nil
			p.chunks, p.bufs = p.chunks[1:], p.bufs[1:]
		} else {
			p.chunks[0] = p.chunks[0][c:]
		}
	}
	p.n -= n
	p.cond.Broadcast()
	return n, nil
}
