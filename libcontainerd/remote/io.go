package remote

import (
	"context"
	"io"

	"github.com/containerd/containerd/cio"

	"github.com/berthd/berthd/libcontainerd/types"
)

// newIOCreator makes a new process' FIFOs in a fresh subdirectory of cfg.FIFODir and opens the daemon's
// ends. containerd records the paths, which is what lets newIOAttach find them after a daemon restart.
func newIOCreator(ctx context.Context, cfg types.IOConfig) cio.Creator {
	if cfg.FIFODir == "" {
		return cio.NullIO
	}
	return func(id string) (cio.IO, error) {
		fifos, err := cio.NewFIFOSetInDir(cfg.FIFODir, id, cfg.Terminal)
		if err != nil {
			return nil, err
		}
		if !cfg.Stdin {
			fifos.Stdin = ""
		}
		return openIO(ctx, fifos, cfg.Stdio)
	}
}

// newIOAttach reopens the FIFOs of an existing process.
func newIOAttach(ctx context.Context, cb types.StdioCallback) cio.Attach {
	return func(fifos *cio.FIFOSet) (cio.IO, error) {
		return openIO(ctx, fifos, cb)
	}
}

// openIO opens the daemon's FIFO ends and hands them to cb, or drains them when cb is nil so that the
// process never blocks on a full pipe. The FIFOs outlive ctx: opening stdin completes in the background
// once the shim opens its end, so it must not be tied to the request's context.
func openIO(ctx context.Context, fifos *cio.FIFOSet, cb types.StdioCallback) (cio.IO, error) {
	dio, err := cio.NewDirectIO(context.WithoutCancel(ctx), fifos)
	if err != nil {
		return nil, err
	}
	s := types.Stdio{Stdout: dio.Stdout, Stderr: dio.Stderr}
	if dio.Stdin != nil {
		s.Stdin = dio.Stdin
	}
	if cb == nil {
		for _, r := range []io.Reader{dio.Stdout, dio.Stderr} {
			if r != nil {
				go io.Copy(io.Discard, r) //nolint:errcheck // draining only
			}
		}
		return dio, nil
	}
	if err := cb(s); err != nil {
		dio.Cancel()
		dio.Close()
		return nil, err
	}
	return dio, nil
}
