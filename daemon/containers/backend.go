package containers

import (
	"context"
	"io"

	ctypes "github.com/berthd/berthd/api/types/container"
)

// Backend adapts the parts to the container router's Backend interface (api/types terms), one adapter
// per route group over the part that serves it.
type Backend struct {
	*LifecycleAPI
	*QueryAPI
	*StreamAPI
	*MonitorAPI
	*FilesystemAPI
	*ExecAPI
	*RestoreAPI
}

type (
	// LifecycleAPI serves create, start, stop, kill, restart, rm, rename, pause, wait, resize, update.
	LifecycleAPI struct{ life *lifecycle }
	// QueryAPI serves ps, inspect, prune, and /info's and the image service's container figures.
	QueryAPI struct{ query *query }
	// StreamAPI serves logs and attach.
	StreamAPI struct{ streams *streamer }
	// MonitorAPI serves top and stats.
	MonitorAPI struct{ monitor *monitor }
	// FilesystemAPI serves cp, export, diff and commit.
	FilesystemAPI struct{ fs *filesystem }
	// ExecAPI serves docker exec.
	ExecAPI struct{ streams *streamer }
	// RestoreAPI tells the daemon how long shutdown may take.
	RestoreAPI struct{ restore *restorer }
)

// Backend returns the router adapters.
func (s *Service) Backend() *Backend {
	return &Backend{
		LifecycleAPI: &LifecycleAPI{s.life}, QueryAPI: &QueryAPI{s.query}, StreamAPI: &StreamAPI{s.streams},
		MonitorAPI: &MonitorAPI{s.monitor}, FilesystemAPI: &FilesystemAPI{s.fs}, ExecAPI: &ExecAPI{s.streams},
		RestoreAPI: &RestoreAPI{s.restore},
	}
}

func (b *LifecycleAPI) ContainerCreate(ctx context.Context, name string, req *ctypes.CreateRequest) (ctypes.CreateResponse, error) {
	r, err := b.life.Create(ctx, name, req)
	if err != nil {
		return ctypes.CreateResponse{}, err
	}
	return ctypes.CreateResponse{ID: r.ID, Warnings: r.Warnings}, nil
}

func (b *LifecycleAPI) ContainerStart(ctx context.Context, ref string) error {
	return b.life.Start(ctx, ref)
}

func (b *LifecycleAPI) ContainerStop(ctx context.Context, ref string, t *int, sig string) error {
	return b.life.Stop(ctx, ref, t, sig)
}

func (b *LifecycleAPI) ContainerKill(ctx context.Context, ref, sig string) error {
	return b.life.Kill(ctx, ref, sig)
}

func (b *LifecycleAPI) ContainerRestart(ctx context.Context, ref string, t *int, sig string) error {
	return b.life.Restart(ctx, ref, t, sig)
}

func (b *LifecycleAPI) ContainerRemove(ctx context.Context, ref string, force, v bool) error {
	return b.life.Remove(ctx, ref, force, v)
}

func (b *LifecycleAPI) ContainerRename(ctx context.Context, ref, name string) error {
	return b.life.Rename(ctx, ref, name)
}

func (b *LifecycleAPI) ContainerPause(ctx context.Context, ref string) error {
	return b.life.Pause(ctx, ref)
}
func (b *LifecycleAPI) ContainerUnpause(ctx context.Context, ref string) error {
	return b.life.Unpause(ctx, ref)
}

func (b *LifecycleAPI) ContainerWait(ctx context.Context, ref, cond string) (<-chan ctypes.WaitResponse, error) {
	ch, err := b.life.Wait(ctx, ref, cond)
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

func (b *LifecycleAPI) ContainerResize(ctx context.Context, ref string, h, w int) error {
	return b.life.Resize(ctx, ref, h, w)
}

func (b *QueryAPI) ContainerList(ctx context.Context, opts ctypes.ListOptions) ([]*ctypes.Summary, error) {
	return b.query.List(ctx, opts)
}

func (b *QueryAPI) ContainerInspect(ctx context.Context, ref string, size bool) (*ctypes.InspectResponse, error) {
	return b.query.Inspect(ctx, ref, size)
}

func (b *StreamAPI) ContainerLogs(ctx context.Context, ref string, opts ctypes.LogsOptions) (bool, func(stdout, stderr io.Writer) error, error) {
	return b.streams.Logs(ctx, ref, opts)
}

func (b *StreamAPI) ContainerAttachCheck(ctx context.Context, ref, detachKeys string) (bool, error) {
	return b.streams.AttachCheck(ctx, ref, detachKeys)
}

func (b *StreamAPI) ContainerAttach(ctx context.Context, ref string, opts ctypes.AttachOptions, stdin io.Reader, stdout, stderr io.Writer, ready func()) error {
	return b.streams.Attach(ctx, ref, opts, AttachConfig{Stdin: stdin, Stdout: stdout, Stderr: stderr}, ready)
}

func (b *MonitorAPI) ContainerTop(ctx context.Context, ref, psArgs string) (*ctypes.TopResponse, error) {
	return b.monitor.Top(ctx, ref, psArgs)
}

func (b *QueryAPI) ContainersPrune(ctx context.Context, filtersJSON string) (*ctypes.PruneReport, error) {
	return b.query.Prune(ctx, filtersJSON)
}

func (b *ExecAPI) ExecCreate(ctx context.Context, ref string, opts ctypes.ExecOptions) (string, error) {
	return b.streams.ExecCreate(ctx, ref, opts)
}

func (b *ExecAPI) ExecCheck(ctx context.Context, id string) (bool, error) {
	e, err := b.streams.getExec(id)
	if err != nil {
		return false, err
	}
	return e.opts.Tty, nil
}

func (b *ExecAPI) ExecStart(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, cs *[2]uint) error {
	if stdout == nil && stderr == nil && stdin == nil {
		return b.streams.ExecStart(ctx, id, nil, cs)
	}
	return b.streams.ExecStart(ctx, id, &AttachConfig{Stdin: stdin, Stdout: stdout, Stderr: stderr}, cs)
}

func (b *ExecAPI) ExecInspect(ctx context.Context, id string) (*ctypes.ExecInspect, error) {
	return b.streams.ExecInspect(ctx, id)
}

func (b *ExecAPI) ExecResize(ctx context.Context, id string, h, w int) error {
	return b.streams.ExecResize(ctx, id, h, w)
}

func (b *MonitorAPI) ContainerStats(ctx context.Context, ref string, stream, oneShot bool, emit func(ctypes.StatsResponse) error) error {
	return b.monitor.Stats(ctx, ref, stream, oneShot, emit)
}

func (b *FilesystemAPI) ContainerExport(ctx context.Context, ref string, w io.Writer) error {
	return b.fs.Export(ctx, ref, w)
}

func (b *FilesystemAPI) ContainerArchiveStat(ctx context.Context, ref, path string) (*ctypes.PathStat, error) {
	return b.fs.ArchiveStat(ctx, ref, path)
}

func (b *FilesystemAPI) ContainerArchive(ctx context.Context, ref, path string, w io.Writer) error {
	return b.fs.Archive(ctx, ref, path, w)
}

func (b *FilesystemAPI) ContainerExtractToDir(ctx context.Context, ref, path string, r io.Reader) error {
	return b.fs.ExtractToDir(ctx, ref, path, r)
}

func (b *FilesystemAPI) ContainerChanges(ctx context.Context, ref string) ([]ctypes.FilesystemChange, error) {
	return b.fs.Changes(ctx, ref)
}

func (b *FilesystemAPI) ContainerCommit(ctx context.Context, ref string, opts ctypes.CommitOptions) (string, error) {
	return b.fs.Commit(ctx, ref, CommitOptions{Repo: opts.Repo, Tag: opts.Tag, Comment: opts.Comment, Author: opts.Author, Changes: opts.Changes, Pause: opts.Pause, Config: opts.Config})
}

func (b *LifecycleAPI) ContainerUpdate(ctx context.Context, ref string, u ctypes.UpdateConfig) ([]string, error) {
	return b.life.Update(ctx, ref, u)
}
