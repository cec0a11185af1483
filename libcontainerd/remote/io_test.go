package remote_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"

	"github.com/berthd/berthd/libcontainerd/types"
)

func TestExecStdinAndTerminal(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	_, task, _ := e.run(t, "stdin", []string{"sleep", "100"})

	// stdin: cat echoes what we write and exits when stdin closes.
	var stdin io.WriteCloser
	out := &output{}
	p, err := task.Exec(ctx, "cat", &specs.Process{Args: []string{"cat"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		types.IOConfig{FIFODir: filepath.Join(e.fifos, "stdin"), Stdin: true, Stdio: func(s types.Stdio) error {
			assert.Assert(t, s.Stdin != nil)
			assert.Assert(t, s.Stderr != nil)
			stdin = s.Stdin
			return out.stdio(s)
		}})
	assert.NilError(t, err)
	assert.NilError(t, p.Start(ctx))
	_, err = io.WriteString(stdin, "ping\n")
	assert.NilError(t, err)
	assert.NilError(t, stdin.Close())
	assert.NilError(t, p.CloseStdin(ctx))
	assert.Equal(t, out.wait(t), "ping\n")
	ex := e.events.waitFor(t, types.EventExit, "stdin", "cat")
	assert.Equal(t, ex.ExitCode, uint32(0))
	_, err = p.Delete(ctx)
	assert.NilError(t, err)

	// terminal: one stream, carriage returns from the pty, resize works.
	tout := &output{}
	tp, err := task.Exec(ctx, "tty", &specs.Process{Args: []string{"sh", "-c", "while [ \"$(stty size 2>/dev/null)\" != '40 120' ]; do sleep 0.1; done; stty size"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		types.IOConfig{FIFODir: filepath.Join(e.fifos, "stdin"), Terminal: true, Stdio: func(s types.Stdio) error {
			assert.Assert(t, s.Stderr == nil)
			return tout.stdio(s)
		}})
	assert.NilError(t, err)
	assert.NilError(t, tp.Start(ctx))
	assert.NilError(t, tp.Resize(ctx, 120, 40))
	got := tout.wait(t)
	assert.Equal(t, strings.TrimSpace(got), "40 120")
	e.events.waitFor(t, types.EventExit, "stdin", "tty")
	_, err = tp.Delete(ctx)
	assert.NilError(t, err)

	// The init process' stdin and terminal: a task running cat on a tty exits when stdin closes.
	ctr, err := e.client.NewContainer(ctx, "ttytask", types.ContainerConfig{
		Spec:           spec(t, "ttytask", e.rootfs, oci.WithTTY, oci.WithProcessArgs("sh", "-c", "while [ \"$(stty size 2>/dev/null)\" != '30 100' ]; do sleep 0.1; done; stty size; cat")),
		RuntimeOptions: &types.RuntimeOptions{Root: e.runcRoot},
	})
	assert.NilError(t, err)
	defer ctr.Delete(ctx)
	ttyOut := &output{}
	var ttyIn io.WriteCloser
	task2, err := ctr.NewTask(ctx, types.TaskConfig{IOConfig: types.IOConfig{
		FIFODir: filepath.Join(e.fifos, "ttytask"), Terminal: true, Stdin: true,
		Stdio: func(s types.Stdio) error { ttyIn = s.Stdin; return ttyOut.stdio(s) },
	}})
	assert.NilError(t, err)
	assert.NilError(t, task2.Start(ctx))
	assert.NilError(t, task2.Resize(ctx, 100, 30))
	_, err = io.WriteString(ttyIn, "typed\n\x04")
	assert.NilError(t, err)
	ex = e.events.waitFor(t, types.EventExit, "ttytask", "ttytask")
	assert.Equal(t, ex.ExitCode, uint32(0))
	assert.NilError(t, ttyIn.Close())
	assert.NilError(t, task2.CloseStdin(ctx))
	got = ttyOut.wait(t)
	assert.Check(t, strings.Contains(got, "30 100"), "%q", got)
	assert.Check(t, strings.Contains(got, "typed"), "%q", got)
	_, err = task2.Delete(ctx)
	assert.NilError(t, err)
}

// TestRootfsMountsAndSnapshot runs tasks whose rootfs containerd mounts: from TaskConfig.Rootfs, and
// from a snapshot named in ContainerConfig (the way `layer` hands over a container's RW layer).
func TestRootfsMountsAndSnapshot(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	// Rootfs mounts: spec root is the bundle's "rootfs", containerd bind-mounts our dir there.
	ctr, err := e.client.NewContainer(ctx, "bind", types.ContainerConfig{
		Spec:           spec(t, "bind", e.rootfs, oci.WithRootFSPath("rootfs"), oci.WithProcessArgs("echo", "bound")),
		RuntimeOptions: &types.RuntimeOptions{Root: e.runcRoot},
	})
	assert.NilError(t, err)
	out := &output{}
	task, err := ctr.NewTask(ctx, types.TaskConfig{
		IOConfig: types.IOConfig{FIFODir: filepath.Join(e.fifos, "bind"), Stdio: out.stdio},
		Rootfs:   []types.Mount{{Type: "bind", Source: e.rootfs, Options: []string{"rbind", "rw"}}},
	})
	assert.NilError(t, err)
	assert.NilError(t, task.Start(ctx))
	assert.Equal(t, out.wait(t), "bound\n")
	e.events.waitFor(t, types.EventExit, "bind", "bind")
	_, err = task.Delete(ctx)
	assert.NilError(t, err)
	assert.NilError(t, ctr.Delete(ctx))

	// Snapshot: prepare a native snapshot holding busybox, as `layer` would.
	cctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, ns), 20*time.Second)
	defer cancel()
	cc, err := containerd.New(e.addr, containerd.WithDefaultNamespace(ns))
	assert.NilError(t, err)
	defer cc.Close()
	sn := cc.SnapshotService("native")
	mounts, err := sn.Prepare(cctx, "snap-rw", "", snapshots.WithLabels(map[string]string{"containerd.io/gc.root": time.Now().UTC().Format(time.RFC3339)}))
	assert.NilError(t, err)
	defer sn.Remove(cctx, "snap-rw")
	assert.NilError(t, mount.WithTempMount(cctx, mounts, func(root string) error {
		return copyTree(e.rootfs, root)
	}))
	ctr, err = e.client.NewContainer(ctx, "snap", types.ContainerConfig{
		Spec:           spec(t, "snap", e.rootfs, oci.WithRootFSPath("rootfs"), oci.WithProcessArgs("echo", "snapped")),
		Snapshotter:    "native",
		SnapshotKey:    "snap-rw",
		RuntimeOptions: &types.RuntimeOptions{Root: e.runcRoot},
	})
	assert.NilError(t, err)
	info, err := ctr.Info(ctx)
	assert.NilError(t, err)
	assert.Equal(t, info.SnapshotKey, "snap-rw")
	out = &output{}
	task, err = ctr.NewTask(ctx, types.TaskConfig{IOConfig: types.IOConfig{FIFODir: filepath.Join(e.fifos, "snap"), Stdio: out.stdio}})
	assert.NilError(t, err)
	assert.NilError(t, task.Start(ctx))
	assert.Equal(t, out.wait(t), "snapped\n")
	e.events.waitFor(t, types.EventExit, "snap", "snap")
	_, err = task.Delete(ctx)
	assert.NilError(t, err)
	assert.NilError(t, ctr.Delete(ctx))
	_, err = sn.Stat(cctx, "snap-rw")
	assert.NilError(t, err, "container delete must leave the snapshot to its owner")
}

// copyTree copies the small busybox rootfs (regular files, dirs, symlinks).
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, fi.Mode().Perm())
		}
	})
}
