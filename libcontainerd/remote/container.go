package remote

import (
	"context"

	containerd "github.com/containerd/containerd"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/libcontainerd/types"
)

type container struct {
	c   *client
	ctr containerd.Container
}

var _ types.Container = (*container)(nil)

func (ct *container) ID() string { return ct.ctr.ID() }

func (ct *container) Info(ctx context.Context) (types.ContainerInfo, error) {
	ci, err := ct.ctr.Info(ct.c.nsCtx(ctx), containerd.WithoutRefreshedMetadata)
	if err != nil {
		return types.ContainerInfo{}, errors.Wrapf(classify(err), "container %s", ct.ID())
	}
	return types.ContainerInfo{
		ID:          ci.ID,
		Labels:      ci.Labels,
		Runtime:     ci.Runtime.Name,
		Snapshotter: ci.Snapshotter,
		SnapshotKey: ci.SnapshotKey,
		CreatedAt:   ci.CreatedAt,
		UpdatedAt:   ci.UpdatedAt,
	}, nil
}

func (ct *container) SetLabels(ctx context.Context, labels map[string]string) (map[string]string, error) {
	l, err := ct.ctr.SetLabels(ct.c.nsCtx(ctx), labels)
	if err != nil {
		return nil, errors.Wrapf(classify(err), "set labels of container %s", ct.ID())
	}
	return l, nil
}

func (ct *container) Spec(ctx context.Context) (*specs.Spec, error) {
	s, err := ct.ctr.Spec(ct.c.nsCtx(ctx))
	if err != nil {
		return nil, errors.Wrapf(classify(err), "spec of container %s", ct.ID())
	}
	return s, nil
}

func (ct *container) Delete(ctx context.Context) error {
	if err := ct.ctr.Delete(ct.c.nsCtx(ctx)); err != nil {
		return errors.Wrapf(classify(err), "delete container %s", ct.ID())
	}
	return nil
}

func (ct *container) NewTask(ctx context.Context, cfg types.TaskConfig) (types.Task, error) {
	ctx = ct.c.nsCtx(ctx)
	var opts []containerd.NewTaskOpts
	if len(cfg.Rootfs) > 0 {
		ms := make([]mount.Mount, len(cfg.Rootfs))
		for i, m := range cfg.Rootfs {
			ms[i] = mount.Mount{Type: m.Type, Source: m.Source, Options: m.Options}
		}
		opts = append(opts, containerd.WithRootFS(ms))
	}
	// The runc shim reads its options (runc binary, root, cgroup driver) from the task request, not
	// from the container record, so they are copied over.
	ci, err := ct.ctr.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return nil, errors.Wrapf(classify(err), "container %s", ct.ID())
	}
	if ci.Runtime.Options != nil && ci.Runtime.Options.GetTypeUrl() != "" {
		v, err := typeurl.UnmarshalAny(ci.Runtime.Options)
		if err != nil {
			return nil, errors.Wrapf(err, "runtime options of container %s", ct.ID())
		}
		opts = append(opts, func(_ context.Context, _ *containerd.Client, ti *containerd.TaskInfo) error {
			ti.Options = v
			return nil
		})
	}
	t, err := ct.ctr.NewTask(ctx, newIOCreator(ctx, cfg.IOConfig), opts...)
	if err != nil {
		if serr := startError(err); errors.As(serr, new(*types.ProcessStartError)) {
			return nil, serr
		}
		return nil, errors.Wrapf(classify(err), "create task for container %s", ct.ID())
	}
	return &task{c: ct.c, t: t}, nil
}

func (ct *container) Task(ctx context.Context, attach types.StdioCallback) (types.Task, error) {
	ctx = ct.c.nsCtx(ctx)
	var ioAttach cio.Attach = cio.Load
	if attach != nil {
		ioAttach = newIOAttach(ctx, attach)
	}
	t, err := ct.ctr.Task(ctx, ioAttach)
	if err != nil {
		return nil, errors.Wrapf(classify(err), "load task of container %s", ct.ID())
	}
	return &task{c: ct.c, t: t}, nil
}

// runcOptions converts berthd's runtime options to the runc shim's protobuf options.
func runcOptions(o *types.RuntimeOptions) any {
	if o == nil {
		return nil
	}
	return &runcoptions.Options{
		BinaryName:    o.BinaryName,
		Root:          o.Root,
		SystemdCgroup: o.SystemdCgroup,
		NoPivotRoot:   o.NoPivotRoot,
		ShimCgroup:    o.ShimCgroup,
	}
}
