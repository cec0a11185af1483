package container

import (
	"encoding/binary"
	"io"
	"sync"
)

// Stream IDs of the stdcopy framing.
const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
	streamSystem = 3
)

// muxWriter frames writes for one stream: an 8-byte header [stream,0,0,0,size BE] then the payload.
// Writers of one connection share mu so frames never interleave.
type muxWriter struct {
	mu *sync.Mutex
	w  io.Writer
	id byte
}

func (m *muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	buf := make([]byte, 8+len(p))
	buf[0] = m.id
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(p)))
	copy(buf[8:], p)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lockedWriter serializes raw (TTY) writes.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// outputs returns the stdout and stderr writers of a stream: framed unless tty.
func outputs(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	if tty {
		lw := &lockedWriter{mu: mu, w: w}
		return lw, lw
	}
	return &muxWriter{mu: mu, w: w, id: streamStdout}, &muxWriter{mu: mu, w: w, id: streamStderr}
}

func systemErrWriter(w io.Writer) io.Writer {
	return &muxWriter{mu: &sync.Mutex{}, w: w, id: streamSystem}
}
