package containers

import (
	"bytes"
	logrus "github.com/containerd/log"
	"io"
	"sync"
	"time"

	"github.com/berthd/berthd/daemon/containers/logger/jsonfile"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
)

// AttachConfig is one client attached to a container's (or exec's) stdio. The router frames Stdout and
// Stderr (stdcopy) unless the process has a TTY; with a TTY Stderr is not used.
type AttachConfig struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// CloseStdin closes the process' stdin when Stdin ends (StdinOnce).
	CloseStdin bool
}

// sink is an attached client's output side; done is closed when the run it follows has ended.
type sink struct {
	stdout, stderr io.Writer
	done           chan struct{}
	once           sync.Once
}

func (k *sink) close() { k.once.Do(func() { close(k.done) }) }

// streams fans a process' output out to the log and to attached clients, and feeds clients' input to
// its stdin. A container keeps one streams across runs, so a client attached before start (docker run)
// sees the first run's output.
type streams struct {
	mu    sync.Mutex
	sinks map[*sink]struct{}

	// stdinR/W carry attached clients' input to the current run's stdin FIFO.
	stdinR *io.PipeReader
	stdinW *io.PipeWriter

	// runDone is closed when the current run's output is drained (nil before the first run).
	runDone chan struct{}
	log     *jsonfile.Writer
}

func newStreams(openStdin bool) *streams {
	st := &streams{sinks: map[*sink]struct{}{}}
	if openStdin {
		st.stdinR, st.stdinW = io.Pipe()
	}
	return st
}

// addSink registers an output client until the end of the current (or next) run.
func (st *streams) addSink(stdout, stderr io.Writer) *sink {
	k := &sink{stdout: stdout, stderr: stderr, done: make(chan struct{})}
	st.mu.Lock()
	st.sinks[k] = struct{}{}
	st.mu.Unlock()
	return k
}

func (st *streams) removeSink(k *sink) {
	st.mu.Lock()
	delete(st.sinks, k)
	st.mu.Unlock()
	k.close()
}

func (st *streams) broadcast(stderr bool, p []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k := range st.sinks {
		w := k.stdout
		if stderr {
			w = k.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			logrus.L.WithError(err).Debug("attach: write failed")
			delete(st.sinks, k)
			k.close()
		}
	}
}

// stdinWriter is where attached clients write; nil without OpenStdin.
func (st *streams) stdinWriter() *io.PipeWriter {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stdinW
}

// closeStdin ends the input (StdinOnce): the process sees EOF. A later run gets a fresh pipe.
func (st *streams) closeStdin() {
	st.mu.Lock()
	w := st.stdinW
	st.mu.Unlock()
	if w != nil {
		w.Close()
	}
}

// run wires a new run's FIFOs: copiers for stdout/stderr into the log and the sinks, and the stdin pipe
// into the process. It returns at once; the run's end closes runDone and every sink.
//
// closeIO tells containerd the input ended: the shim keeps the stdin FIFO open, so only CloseIO makes
// the process see EOF.
func (st *streams) run(stdio ltypes.Stdio, log *jsonfile.Writer, closeIO func()) {
	st.mu.Lock()
	done := make(chan struct{})
	st.runDone = done
	st.log = log
	stdinR := st.stdinR
	if stdinR != nil && stdio.Stdin != nil {
		go func() {
			io.Copy(stdio.Stdin, stdinR)
			stdio.Stdin.Close()
			if closeIO != nil {
				closeIO()
			}
		}()
	} else if stdio.Stdin != nil && stdinR == nil {
		stdio.Stdin.Close()
	}
	st.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range []struct {
		r      io.ReadCloser
		stderr bool
		name   string
	}{{stdio.Stdout, false, "stdout"}, {stdio.Stderr, true, "stderr"}} {
		if s.r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.copyOut(s.r, s.stderr, s.name, log)
		}()
	}
	go func() {
		wg.Wait()
		st.mu.Lock()
		for k := range st.sinks {
			delete(st.sinks, k)
			k.close()
		}
		// A closed stdin pipe is replaced so that the next run can be fed again.
		if st.stdinR != nil && stdinR == st.stdinR {
			st.stdinR, st.stdinW = io.Pipe()
			if stdinR != nil {
				stdinR.Close()
			}
		}
		st.mu.Unlock()
		close(done)
	}()
}

// done is the current run's drained signal; nil before any run.
func (st *streams) done() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.runDone
}

func (st *streams) copyOut(r io.ReadCloser, stderr bool, name string, log *jsonfile.Writer) {
	defer r.Close()
	buf := make([]byte, 32<<10)
	var partial []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p := buf[:n]
			st.broadcast(stderr, p)
			if log != nil {
				now := time.Now()
				for len(p) > 0 {
					i := bytes.IndexByte(p, '\n')
					if i < 0 {
						partial = append(partial, p...)
						if len(partial) >= 16<<10 {
							_ = log.Log(name, partial, now)
							partial = partial[:0]
						}
						break
					}
					line := p[:i+1]
					if len(partial) > 0 {
						line = append(partial, line...)
						partial = partial[:0]
					}
					_ = log.Log(name, line, now)
					p = p[i+1:]
				}
			}
		}
		if err != nil {
			if len(partial) > 0 && log != nil {
				_ = log.Log(name, partial, time.Now())
			}
			return
		}
	}
}
