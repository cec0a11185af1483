// Package jsonfile is the json-file log driver: one JSON object per line of container output
// ({"log":"...","stream":"stdout","time":"..."}), the format dockerd writes, so tools that read dockerd's
// <id>-json.log read ours. Readers can tail, filter by time and follow a live writer. Stdlib only.
package jsonfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"
)

type entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Writer appends log lines to a file. It is safe for concurrent use by the stdout and stderr copiers.
type Writer struct {
	mu      sync.Mutex
	f       *os.File
	buf     bytes.Buffer
	changed chan struct{}
	closed  bool
}

// Open opens (appending) or creates the log file.
func Open(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, changed: make(chan struct{})}, nil
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
	if err := enc.Encode(entry{Log: string(line), Stream: stream, Time: t.UTC()}); err != nil {
		return err
	}
	_, err := w.f.Write(w.buf.Bytes())
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
	return w.f.Close()
}

// Message is one decoded log line.
type Message struct {
	Stream string
	Line   []byte
	Time   time.Time
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
		r = bufio.NewReaderSize(f, 64<<10)
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
					m := Message{Stream: e.Stream, Line: []byte(e.Log), Time: e.Time}
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
