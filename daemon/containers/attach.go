package containers

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/logger"
	"github.com/berthd/berthd/daemon/containers/logger/jsonfile"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

func itoa(n int) string { return strconv.Itoa(n) }

// AttachCheck fails (before the router hijacks the connection) when the container cannot be attached
// or the detach keys are invalid.
func (s *streamer) AttachCheck(ctx context.Context, ref, detachKeys string) (tty bool, err error) {
	c, err := s.get(ref)
	if err != nil {
		return false, err
	}
	if _, err := parseDetachKeys(detachKeys); err != nil {
		return false, err
	}
	if c.State.IsPaused() {
		return false, errdefs.ErrConflict.WithMessage("You cannot attach to a paused container, unpause it first")
	}
	if c.State.IsRestarting() {
		return false, errdefs.ErrConflict.WithMessage("You cannot attach to a restarting container, wait until it is running")
	}
	return c.Config.Tty, nil
}

// Attach connects a client to a container's stdio until the current (or next) run ends or the client
// goes away (ctx). With logs, the log so far is replayed first.
//
// ready is called once the client is registered (before any output is written): the router sends its
// 101 response there, so no output of a run started right after can be missed.
func (s *streamer) Attach(ctx context.Context, ref string, opts ctypes.AttachOptions, a AttachConfig, ready func()) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.streams == nil {
		c.streams = newStreams(c.Config.OpenStdin)
	}
	st := c.streams
	c.mu.Unlock()
	var stdout, stderr io.Writer
	if opts.Stdout {
		stdout = a.Stdout
	}
	if opts.Stderr {
		stderr = a.Stderr
	}
	var k *sink
	if !opts.Logs && opts.Stream {
		k = st.addSink(stdout, stderr)
		defer st.removeSink(k)
	}
	ready()
	if opts.Logs {
		_ = jsonfile.Read(ctx, c.logFile(), jsonfile.ReadOptions{Tail: -1}, nil, func(m jsonfile.Message) error {
			w := stdout
			if m.Stream == "stderr" {
				w = stderr
			}
			if w != nil {
				_, err := w.Write(m.Line)
				return err
			}
			return nil
		})
	}
	if !opts.Stream {
		return nil
	}
	if k == nil {
		k = st.addSink(stdout, stderr)
		defer st.removeSink(k)
	}
	s.logEvent(c, "attach", nil)
	detached := make(chan struct{})
	if opts.Stdin && a.Stdin != nil && c.Config.OpenStdin {
		keys, err := parseDetachKeys(opts.DetachKeys)
		if err != nil {
			return err
		}
		if w := st.stdinWriter(); w != nil {
			go func() {
				_, err := io.Copy(w, &detachReader{r: a.Stdin, keys: keys})
				if err == errDetached {
					close(detached)
					return
				}
				if c.Config.StdinOnce && !c.Config.Tty || a.CloseStdin {
					st.closeStdin()
				}
			}()
		}
	}
	select {
	case <-detached:
		log.G(ctx).WithField("container", c.ID).Debug("attach: detached")
	case <-k.done:
		log.G(ctx).WithField("container", c.ID).Debug("attach: run ended")
	case <-ctx.Done():
		log.G(ctx).WithField("container", c.ID).Debug("attach: client gone")
	}
	return nil
}

// LogsStream describes how the router frames log output.
type LogsStream struct {
	Tty bool
}

// Logs writes the container's log to stdout/stderr (GET /containers/{id}/logs). The container is looked
// up first, so an unknown one fails before any header is sent.
func (s *streamer) Logs(ctx context.Context, ref string, opts ctypes.LogsOptions) (tty bool, run func(stdout, stderr io.Writer) error, err error) {
	c, err := s.get(ref)
	if err != nil {
		return false, nil, err
	}
	if !opts.ShowStdout && !opts.ShowStderr {
		return false, nil, invalidf("Bad parameters: you must choose at least one stream")
	}
	if !logger.Readable(c.HostConfig.LogConfig.Type) {
		return false, nil, invalidf("configured logging driver does not support reading")
	}
	ro := jsonfile.ReadOptions{Tail: -1, Follow: opts.Follow}
	if opts.Tail != "" && opts.Tail != "all" {
		n, err := strconv.Atoi(opts.Tail)
		if err == nil && n >= 0 {
			ro.Tail = n
		}
	}
	if opts.Since != "" {
		t, err := parseTimestamp(opts.Since)
		if err != nil {
			return false, nil, err
		}
		ro.Since = t
	}
	if opts.Until != "" {
		t, err := parseTimestamp(opts.Until)
		if err != nil {
			return false, nil, err
		}
		ro.Until = t
	}
	var follow *jsonfile.Follow
	if opts.Follow {
		c.mu.Lock()
		done := make(chan struct{})
		if c.task == nil {
			close(done)
		} else if ex := c.exited; ex != nil {
			go func() {
				select {
				case <-ex:
				case <-ctx.Done():
				}
				close(done)
			}()
		} else {
			close(done)
		}
		follow = &jsonfile.Follow{Writer: c.logw, Done: done}
		c.mu.Unlock()
	}
	path := c.logFile()
	return c.Config.Tty, func(stdout, stderr io.Writer) error {
		return jsonfile.Read(ctx, path, ro, follow, func(m jsonfile.Message) error {
			w := stdout
			if m.Stream == "stderr" {
				if !opts.ShowStderr {
					return nil
				}
				w = stderr
			} else if !opts.ShowStdout {
				return nil
			}
			line := m.Line
			if opts.Details {
				line = append([]byte(logger.Details(m.Attrs)), line...)
			}
			if opts.Timestamps {
				line = append([]byte(m.Time.UTC().Format("2006-01-02T15:04:05.000000000Z")+" "), line...)
			}
			_, err := w.Write(line)
			return err
		})
	}, nil
}

// parseTimestamp reads the `since`/`until` forms the CLI sends: "<unix>[.<nanos>]".
func parseTimestamp(v string) (time.Time, error) {
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, err2 := time.Parse(time.RFC3339Nano, v); err2 == nil {
			return t, nil
		}
		return time.Time{}, invalidf("invalid timestamp %q", v)
	}
	var ns int64
	if frac != "" {
		for len(frac) < 9 {
			frac += "0"
		}
		ns, _ = strconv.ParseInt(frac[:9], 10, 64)
	}
	return time.Unix(s, ns), nil
}

var errDetached = errors.New("detached")

// parseDetachKeys reads dockerd's detach key syntax ("ctrl-p,ctrl-q" by default; "a", "ctrl-@".."ctrl-_").
func parseDetachKeys(spec string) ([]byte, error) {
	if spec == "" {
		spec = "ctrl-p,ctrl-q"
	}
	var out []byte
	for _, k := range strings.Split(spec, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, invalidf("Invalid detach keys (%s) provided", spec)
			}
		default:
			return nil, invalidf("Invalid detach keys (%s) provided", spec)
		}
	}
	return out, nil
}

// detachReader passes input through until the detach sequence is typed; a partial match is held back
// and released when the next byte breaks it.
type detachReader struct {
	r       io.Reader
	keys    []byte
	matched int
	out     []byte
	err     error
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if len(d.keys) > 0 && b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					d.err = errDetached
					break
				}
				continue
			}
			if d.matched > 0 {
				d.out = append(d.out, d.keys[:d.matched]...)
				d.matched = 0
			}
			d.out = append(d.out, b)
		}
		if err != nil && d.err == nil {
			if d.matched > 0 {
				d.out = append(d.out, d.keys[:d.matched]...)
				d.matched = 0
			}
			d.err = err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}
