package containers

import (
	"context"
	"io"

	ctypes "github.com/berthd/berthd/api/types/container"
)

// Backend adapts the service to the container router's Backend interface (api/types terms).
type Backend struct{ s *Service }

// Backend returns the router adapter.
func (s *Service) Backend() *Backend { return &Backend{s: s} }

func (b *Backend) ContainerCreate(ctx context.Context, name string, req *ctypes.CreateRequest) (ctypes.CreateResponse, error) {
	r, err := b.s.life.Create(ctx, name, req)
	if err != nil {
		return ctypes.CreateResponse{}, err
	}
	return ctypes.CreateResponse{ID: r.ID, Warnings: r.Warnings}, nil
}

func (b *Backend) ContainerStart(ctx context.Context, ref string) error {
	return b.s.life.Start(ctx, ref)
}

func (b *Backend) ContainerStop(ctx context.Context, ref string, t *int, sig string) error {
	return b.s.life.Stop(ctx, ref, t, sig)
}

func (b *Backend) ContainerKill(ctx context.Context, ref, sig string) error {
	return b.s.life.Kill(ctx, ref, sig)
}

func (b *Backend) ContainerRestart(ctx context.Context, ref string, t *int, sig string) error {
	return b.s.life.Restart(ctx, ref, t, sig)
}

func (b *Backend) ContainerRemove(ctx context.Context, ref string, force, v bool) error {
	return b.s.life.Remove(ctx, ref, force, v)
}

func (b *Backend) ContainerRename(ctx context.Context, ref, name string) error {
	return b.s.life.Rename(ctx, ref, name)
}

func (b *Backend) ContainerPause(ctx context.Context, ref string) error {
	return b.s.life.Pause(ctx, ref)
}
func (b *Backend) ContainerUnpause(ctx context.Context, ref string) error {
	return b.s.life.Unpause(ctx, ref)
}

func (b *Backend) ContainerWait(ctx context.Context, ref, cond string) (<-chan ctypes.WaitResponse, error) {
	ch, err := b.s.life.Wait(ctx, ref, cond)
	if err != nil {
		return nil, err
	}
	out := make(chan ctypes.WaitResponse, 1)
	go func() {
		select {
		case st := <-ch:
			// A start error reaches the client through the start request; dockerd's wait answer then
			// carries only the exit code (the CLI would otherwise print the error twice).
			out <- ctypes.WaitResponse{StatusCode: int64(st.ExitCode)}
		case <-ctx.Done():
		}
	}()
	return out, nil
}

func (b *Backend) ContainerResize(ctx context.Context, ref string, h, w int) error {
	return b.s.life.Resize(ctx, ref, h, w)
}

func (b *Backend) ContainerList(ctx context.Context, opts ctypes.ListOptions) ([]*ctypes.Summary, error) {
	return b.s.query.List(ctx, opts)
}

func (b *Backend) ContainerInspect(ctx context.Context, ref string, size bool) (*ctypes.InspectResponse, error) {
	return b.s.query.Inspect(ctx, ref, size)
}

func (b *Backend) ContainerLogs(ctx context.Context, ref string, opts ctypes.LogsOptions) (bool, func(stdout, stderr io.Writer) error, error) {
	return b.s.streams.Logs(ctx, ref, opts)
}

func (b *Backend) ContainerAttachCheck(ctx context.Context, ref, detachKeys string) (bool, error) {
	return b.s.streams.AttachCheck(ctx, ref, detachKeys)
}

func (b *Backend) ContainerAttach(ctx context.Context, ref string, opts ctypes.AttachOptions, stdin io.Reader, stdout, stderr io.Writer, ready func()) error {
	return b.s.streams.Attach(ctx, ref, opts, AttachConfig{Stdin: stdin, Stdout: stdout, Stderr: stderr}, ready)
}

func (b *Backend) ContainerTop(ctx context.Context, ref, psArgs string) (*ctypes.TopResponse, error) {
	return b.s.monitor.Top(ctx, ref, psArgs)
}

func (b *Backend) ContainersPrune(ctx context.Context, filtersJSON string) (*ctypes.PruneReport, error) {
	return b.s.query.Prune(ctx, filtersJSON)
}

func (b *Backend) ExecCreate(ctx context.Context, ref string, opts ctypes.ExecOptions) (string, error) {
	return b.s.streams.ExecCreate(ctx, ref, opts)
}

func (b *Backend) ExecCheck(ctx context.Context, id string) (bool, error) {
	e, err := b.s.streams.getExec(id)
	if err != nil {
		return false, err
	}
	return e.opts.Tty, nil
}

func (b *Backend) ExecStart(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, cs *[2]uint) error {
	if stdout == nil && stderr == nil && stdin == nil {
		return b.s.streams.ExecStart(ctx, id, nil, cs)
	}
	return b.s.streams.ExecStart(ctx, id, &AttachConfig{Stdin: stdin, Stdout: stdout, Stderr: stderr}, cs)
}

func (b *Backend) ExecInspect(ctx context.Context, id string) (*ctypes.ExecInspect, error) {
	return b.s.streams.ExecInspect(ctx, id)
}

func (b *Backend) ExecResize(ctx context.Context, id string, h, w int) error {
	return b.s.streams.ExecResize(ctx, id, h, w)
}

func (b *Backend) ContainerStats(ctx context.Context, ref string, stream, oneShot bool, emit func(ctypes.StatsResponse) error) error {
	return b.s.monitor.Stats(ctx, ref, stream, oneShot, emit)
}

func (b *Backend) ContainerExport(ctx context.Context, ref string, w io.Writer) error {
	return b.s.fs.Export(ctx, ref, w)
}

func (b *Backend) ContainerArchiveStat(ctx context.Context, ref, path string) (*ctypes.PathStat, error) {
	return b.s.fs.ArchiveStat(ctx, ref, path)
}

func (b *Backend) ContainerArchive(ctx context.Context, ref, path string, w io.Writer) error {
	return b.s.fs.Archive(ctx, ref, path, w)
}

func (b *Backend) ContainerExtractToDir(ctx context.Context, ref, path string, r io.Reader) error {
	return b.s.fs.ExtractToDir(ctx, ref, path, r)
}

func (b *Backend) ContainerChanges(ctx context.Context, ref string) ([]ctypes.FilesystemChange, error) {
	return b.s.fs.Changes(ctx, ref)
}

func (b *Backend) ContainerCommit(ctx context.Context, ref string, opts ctypes.CommitOptions) (string, error) {
	return b.s.fs.Commit(ctx, ref, CommitOptions{Repo: opts.Repo, Tag: opts.Tag, Comment: opts.Comment, Author: opts.Author, Changes: opts.Changes, Pause: opts.Pause, Config: opts.Config})
}

func (b *Backend) ContainerUpdate(ctx context.Context, ref string, u ctypes.UpdateConfig) ([]string, error) {
	return b.s.life.Update(ctx, ref, u)
}
