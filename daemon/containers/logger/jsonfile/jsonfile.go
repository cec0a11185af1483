// Package jsonfile is the json-file log driver: one JSON object per line of container output
// ({"log":"...","stream":"stdout","time":"..."}), the format dockerd writes, so tools that read dockerd's
// <id>-json.log read ours. Readers can tail, filter by time and follow a live writer. Stdlib only.
package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

type entry struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	Time   time.Time         `json:"time"`
}

// Writer appends log lines to a file. It is safe for concurrent use by the stdout and stderr copiers.
type Writer struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	size    int64
	opts    Options
	buf     bytes.Buffer
	changed chan struct{}
	closed  bool
	// compressed is closed when the gzip of the last rotated file is done (nil: none under way). The
	// output copier never waits for a compression, except at the next rotation if it is still running.
	compressed chan struct{}
}

// Options steer a Writer. The log drivers (package logger) derive them from --log-opt.
type Options struct {
	// MaxSize rotates the file when it would grow past this many bytes (0: never).
	MaxSize int64
	// MaxFiles is how many files are kept, the live one included (at least 1).
	MaxFiles int
	// Compress gzips rotated files (path.N.gz).
	Compress bool
	// Attrs are written with every line (the labels/env/tag log-opts); `logs --details` shows them.
	Attrs map[string]string
}

// Open opens (appending) or creates the log file.
func Open(path string, opts ...Options) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, f: f, changed: make(chan struct{}), opts: Options{MaxFiles: 1}}
	if len(opts) > 0 {
		w.opts = opts[0]
	}
	if fi, err := f.Stat(); err == nil {
		w.size = fi.Size()
	}
	return w, nil
}

// rotate shifts path.N-1 -> path.N ... path -> path.1 (gzipped to path.1.gz when compressing) and starts
// a new file; with one file kept the log is truncated.
func (w *Writer) rotate() error {
	w.f.Close()
	w.waitCompressed()
	ext := ""
	if w.opts.Compress {
		ext = ".gz"
	}
	for i := w.opts.MaxFiles - 1; i >= 2; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d%s", w.path, i-1, ext), fmt.Sprintf("%s.%d%s", w.path, i, ext))
	}
	if w.opts.MaxFiles > 1 {
		first := w.path + ".1"
		if err := os.Rename(w.path, first); err == nil && w.opts.Compress {
			done := make(chan struct{})
			w.compressed = done
			go func() {
				defer close(done)
				// On failure the plain file stays: readers take path.N as well as path.N.gz.
				_ = gzipFile(first)
			}()
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	return nil
}

// Log writes one message (a line with its newline, or a final partial line).
func (w *Writer) Log(stream string, line []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return os.ErrClosed
	}
	w.buf.Reset()
	enc := json.NewEncoder(&w.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(entry{Log: string(line), Stream: stream, Attrs: w.opts.Attrs, Time: t.UTC()}); err != nil {
		return err
	}
	if w.opts.MaxSize > 0 && w.size > 0 && w.size+int64(w.buf.Len()) > w.opts.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	close(w.changed)
	w.changed = make(chan struct{})
	return err
}

// Changed returns a channel closed at the next write or at Close.
func (w *Writer) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Close closes the file and wakes followers.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	close(w.changed)
	err := w.f.Close()
	w.waitCompressed()
	return err
}

func (w *Writer) waitCompressed() {
	if w.compressed != nil {
		<-w.compressed
		w.compressed = nil
	}
}

// Message is one decoded log line.
type Message struct {
	Stream string
	Line   []byte
	Time   time.Time
	Attrs  map[string]string
}

// ReadOptions select messages. Tail < 0 means all.
type ReadOptions struct {
	Tail   int
	Since  time.Time
	Until  time.Time
	Follow bool
}

// Follow is what a follower waits on: the live writer's changes and the end of the run.
type Follow struct {
	Writer *Writer
	// Done is closed when the container stopped (after its output was written).
	Done <-chan struct{}
}

// Read emits the messages of the file at path. With opts.Follow and a non-nil follow, it keeps emitting
// new messages until follow.Done is closed (then drains the rest) or ctx ends.
func Read(ctx context.Context, path string, opts ReadOptions, follow *Follow, emit func(Message) error) error {
	// Rotated files, oldest first, then the live one.
	old, closeOld := openRotated(path)
	defer closeOld()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			if !opts.Follow || follow == nil {
				return nil
			}
		} else {
			return err
		}
	}
	var r *bufio.Reader
	if f != nil {
		defer f.Close()
		r = bufio.NewReaderSize(io.MultiReader(append(old, f)...), 64<<10)
	}
	keep := func(m Message) bool {
		if !opts.Since.IsZero() && m.Time.Before(opts.Since) {
			return false
		}
		if !opts.Until.IsZero() && m.Time.After(opts.Until) {
			return false
		}
		return true
	}
	// First pass: everything present now, tailed.
	var pending []byte
	readAvailable := func(each func(Message) error) error {
		if r == nil {
			return nil
		}
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				if err == io.EOF {
					// A line being written: keep it for the next pass.
					pending = append(pending, line...)
					return nil
				}
				if len(pending) > 0 {
					line = append(pending, line...)
					pending = nil
				}
				var e entry
				if json.Unmarshal(line, &e) == nil {
					m := Message{Stream: e.Stream, Line: []byte(e.Log), Time: e.Time, Attrs: e.Attrs}
					if keep(m) {
						if err := each(m); err != nil {
							return err
						}
					}
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if opts.Tail >= 0 {
		ring := make([]Message, 0, opts.Tail)
		if err := readAvailable(func(m Message) error {
			if opts.Tail == 0 {
				return nil
			}
			if len(ring) == opts.Tail {
				copy(ring, ring[1:])
				ring = ring[:len(ring)-1]
			}
			ring = append(ring, m)
			return nil
		}); err != nil {
			return err
		}
		for _, m := range ring {
			if err := emit(m); err != nil {
				return err
			}
		}
	} else if err := readAvailable(emit); err != nil {
		return err
	}
	if !opts.Follow || follow == nil {
		return nil
	}
	if f != nil {
		// The multi-file reader is done for good at EOF; the live file alone grows.
		r = bufio.NewReaderSize(f, 64<<10)
	}
	for {
		var changed <-chan struct{}
		if follow.Writer != nil {
			changed = follow.Writer.Changed()
		}
		if r == nil {
			if f, err = os.Open(path); err == nil {
				defer f.Close()
				r = bufio.NewReaderSize(f, 64<<10)
			}
		}
		if err := readAvailable(emit); err != nil {
			return err
		}
		// Rotated under us: the rest of the old file was just read; continue with the new one.
		if f != nil {
			cur, err1 := f.Stat()
			now, err2 := os.Stat(path)
			if err1 == nil && err2 == nil && !os.SameFile(cur, now) {
				if nf, err := os.Open(path); err == nil {
					defer nf.Close()
					f, r, pending = nf, bufio.NewReaderSize(nf, 64<<10), nil
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-follow.Done:
			return readAvailable(emit)
		case <-changed:
		case <-time.After(time.Second):
			// Also covers a writer replaced by a restart of the container.
		}
	}
}
