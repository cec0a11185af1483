package containers

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
	"github.com/berthd/berthd/daemon/network"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func numCPU() int { return runtime.NumCPU() }

func hasSwapAccounting() bool {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// signalFromString accepts "TERM", "SIGTERM", "sigterm" and numbers, as dockerd.
func signalFromString(s string) (syscall.Signal, error) {
	if s == "" {
		return 0, invalidf("Invalid signal: %s", s)
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, invalidf("Invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, invalidf("Invalid signal: %s", s)
	}
	return sig, nil
}

// processEnv is dockerd's container environment: PATH and HOSTNAME (and TERM with a TTY) overridden by
// the config's own variables. An entry without "=" (docker run -e NAME with NAME unset on the client)
// unsets NAME, as in dockerd: runc refuses such an entry.
func processEnv(cfg *ctypes.Config) []string {
	env := []string{"PATH=" + defaultPath, "HOSTNAME=" + cfg.Hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	return replaceOrAppendEnv(env, cfg.Env)
}

// replaceOrAppendEnv applies overrides to base: NAME=value replaces or appends, a bare NAME removes.
func replaceOrAppendEnv(base, overrides []string) []string {
	out := append([]string(nil), base...)
	for _, e := range overrides {
		k, _, hasValue := strings.Cut(e, "=")
		i := slices.IndexFunc(out, func(b string) bool { bk, _, _ := strings.Cut(b, "="); return bk == k })
		switch {
		case !hasValue && i >= 0:
			out = slices.Delete(out, i, i+1)
		case !hasValue:
		case i >= 0:
			out[i] = e
		default:
			out = append(out, e)
		}
	}
	return out
}

// mountVolumes mounts the container's volumes (driver Mount with mount ID = container ID) and returns
// the spec mounts of every mount point plus the generated /etc files. On error, what was mounted is
// unmounted again.
func (s *specBuilder) mountVolumes(ctx context.Context, c *Container) (_ []oci.Mount, retErr error) {
	defer func() {
		if retErr != nil {
			s.unmountVolumes(context.WithoutCancel(ctx), c)
		}
	}()
	var out []oci.Mount
	taken := map[string]bool{}
	for _, mp := range c.MountPoints {
		taken[mp.Destination] = true
		switch mp.Type {
		case ctypes.MountTypeVolume:
			p, err := s.volumes.Mount(ctx, mp.Name, c.ID, map[string]string{
				"container": c.ID, "destination": mp.Destination, "read/write": strconv.FormatBool(mp.RW),
				"propagation": mp.Propagation,
			})
			if err != nil {
				return nil, err
			}
			c.mpMu.Lock()
			mp.ID = c.ID
			mp.Source = p
			c.mpMu.Unlock()
			src, err := s.volumeSource(c, mp, p)
			if err != nil {
				return nil, err
			}
			out = append(out, oci.Mount{Destination: mp.Destination, Type: "bind", Source: src, Options: mp.BindOptions()})
		case ctypes.MountTypeBind:
			if mp.Spec != nil && mp.Spec.BindOptions != nil && mp.Spec.BindOptions.CreateMountpoint {
				_ = os.MkdirAll(mp.Source, 0o755)
			}
			if _, err := os.Stat(mp.Source); err != nil {
				return nil, invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source)
			}
			out = append(out, oci.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: mp.BindOptions()})
		case ctypes.MountTypeTmpfs:
			out = append(out, oci.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: mp.TmpfsOptions()})
		}
	}
	fc, err := s.owners.netOwner(c)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/resolv.conf", fc.resolvPath()}, {"/etc/hostname", fc.hostnamePath()}, {"/etc/hosts", fc.hostsPath()},
	} {
		if taken[f.dst] {
			continue
		}
		opts := []string{"rbind", "rprivate"}
		if c.HostConfig.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		out = append(out, oci.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	return out, nil
}

// unmountVolumes undoes mountVolumes: exactly one Unmount per successful Mount (mp.ID says which).
func (s *specBuilder) unmountVolumes(ctx context.Context, c *Container) {
	s.releaseSubpaths(c)
	for _, mp := range c.MountPoints {
		if mp.Type != ctypes.MountTypeVolume || mp.ID == "" {
			continue
		}
		if err := s.volumes.Unmount(ctx, mp.Name, mp.ID, map[string]string{"container": c.ID}); err != nil {
			log.G(ctx).WithError(err).WithField("volume", mp.Name).Warn("unmount volume")
		}
		c.mpMu.Lock()
		mp.ID = ""
		c.mpMu.Unlock()
	}
}

func (s *specBuilder) buildSpec(ctx context.Context, c *Container, ms []oci.Mount) (*oci.Options, error) {
	cfg, hc := c.Config, c.HostConfig
	user, err := s.users.resolveUser(ctx, c, cfg.User, hc.GroupAdd)
	if err != nil {
		return nil, err
	}
	mode, err := network.ParseMode(hc.NetworkMode)
	if err != nil {
		return nil, err
	}
	o := &oci.Options{
		Args: append([]string{c.Path}, c.Args...), Env: processEnv(cfg), Cwd: cfg.WorkingDir, User: withPrimaryGroup(user),
		Terminal: cfg.Tty, Hostname: s.owners.hostnameOf(c), Domainname: cfg.Domainname,
		ReadonlyRootfs: hc.ReadonlyRootfs, Mounts: ms, Tmpfs: hc.Tmpfs, ShmSize: hc.ShmSize,
		HostNetwork: mode == network.Host, HostPID: hc.PidMode == "host", HostIPC: hc.IpcMode == "host",
		HostUTS: hc.UTSMode == "host", CgroupNS: hc.CgroupnsMode == "private",
		Privileged: hc.Privileged, CapAdd: hc.CapAdd, CapDrop: hc.CapDrop, LastCap: s.lastCap, Bounding: s.bounding,
		CgroupsPath: s.cfg.cgroupsPath(hc, c.ID),
		Memory:      hc.Memory, MemorySwap: hc.MemorySwap, NanoCPUs: hc.NanoCPUs, CPUShares: hc.CPUShares,
		CPUQuota: hc.CPUQuota, CPUPeriod: hc.CPUPeriod, CpusetCpus: hc.CpusetCpus,
		OomScoreAdj: hc.OomScoreAdj, Sysctls: hc.Sysctls, MaskedPaths: hc.MaskedPaths, ReadonlyPaths: hc.ReadonlyPaths,
	}
	if hc.PidsLimit != nil {
		o.PidsLimit = *hc.PidsLimit
	}
	if o.Devices, err = devicesFor(hc); err != nil {
		return nil, err
	}
	o.Rlimits = s.cfg.Defaults.rlimits(hc)
	if o.Security, err = securityFor(s.cfg.Security, hc); err != nil {
		return nil, err
	}
	if o.Extra, err = s.extraSpec(c); err != nil {
		return nil, err
	}
	if (hc.Init != nil && *hc.Init) || (hc.Init == nil && s.cfg.Defaults.Init) {
		if s.cfg.InitPath == "" {
			return nil, errdefs.ErrFailedPrecondition.WithMessage("no init binary configured (docker-init)")
		}
		o.InitPath = s.cfg.InitPath
	}
	return o, nil
}

// Start starts a created or stopped container (POST /containers/{id}/start). NotModified when running.
func (s *lifecycle) Start(ctx context.Context, ref string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	ctx = logCtx(ctx, c)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.IsPaused() {
		return errdefs.ErrConflict.WithMessage("cannot start a paused container, try unpause instead")
	}
	if c.State.IsRunning() {
		return errdefs.ErrNotModified.WithMessage("container already started")
	}
	c.State.mu.Lock()
	removing, dead := c.State.RemovalInProgress, c.State.Dead
	c.State.mu.Unlock()
	if removing || dead {
		return errdefs.ErrConflict.WithMessage("container is marked for removal and cannot be started")
	}
	if c.restartCancel != nil {
		c.restartCancel()
		c.restartCancel = nil
	}
	c.HasBeenManuallyStopped = false
	c.RestartCount = 0
	c.restartDelay = 0
	err = s.startLocked(ctx, c)
	if err != nil && c.HostConfig.AutoRemove {
		// A --rm container whose start failed is gone, as with dockerd; its waiters learn the code.
		go s.removeAfterFailedStart(context.WithoutCancel(ctx), c)
	}
	return err
}

func (s *lifecycle) removeAfterFailedStart(ctx context.Context, c *Container) {
	if err := s.remove(ctx, c, true, true); err != nil {
		log.G(ctx).WithError(err).Warn("remove --rm container after failed start")
	}
}

// startLocked runs the container; c.mu is held.
func (s *lifecycle) startLocked(ctx context.Context, c *Container) (retErr error) {
	if s.client == nil {
		return errdefs.ErrUnavailable.WithMessage("containerd is not connected")
	}
	defer func() {
		if retErr != nil {
			code := 128
			var pse *ltypes.ProcessStartError
			if errors.As(retErr, &pse) {
				// dockerd's exit codes for a command that cannot run: 127 not found, 126 not invokable.
				switch pse.Reason {
				case ltypes.CommandNotFound:
					code = 127
				case ltypes.CommandNotInvokable:
					code = 126
				case ltypes.MountTypeMismatch:
					code = 127
					retErr = errdefs.ErrInvalidArgument.WithMessage(pse.Msg + ": Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type")
				}
			}
			c.State.SetError(retErr, code)
			c.State.SetStopped(code, time.Now())
			_ = c.save()
		}
	}()
	tr := newStepTrace(ctx, "container start")
	defer tr.done()
	ms, err := s.spec.mountVolumes(ctx, c)
	if err != nil {
		return err
	}
	tr.step("volumes")
	defer func() {
		if retErr != nil {
			s.spec.unmountVolumes(context.WithoutCancel(ctx), c)
		}
	}()
	// The spec does not depend on the network (its namespace path and link variables are set below), so
	// it is built while the endpoints are set up.
	type built struct {
		opts *oci.Options
		err  error
	}
	specDone := make(chan built, 1)
	go func() {
		o, err := s.spec.buildSpec(ctx, c, ms)
		specDone <- built{o, err}
	}()
	nsPath, err := s.net.setupNetwork(ctx, c)
	b := <-specDone
	tr.step("network+spec")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			s.net.releaseNetwork(context.WithoutCancel(ctx), c)
		}
	}()
	opts, err := b.opts, b.err
	if err != nil {
		return err
	}
	opts.NetNSPath = nsPath
	opts.Env = append(append([]string(nil), c.netConfig().linkEnv...), opts.Env...)
	spec, err := oci.Build(*opts)
	if err != nil {
		return err
	}
	tr.step("spec")
	ccfg := ltypes.ContainerConfig{
		Spec: spec, Snapshotter: s.layers.Snapshotter(), SnapshotKey: c.ID,
		Labels:         map[string]string{"com.docker/engine.bundle.path": c.dir},
		RuntimeOptions: s.cfg.Defaults.runtimeOptions(),
	}
	ctr, err := s.client.NewContainer(ctx, c.ID, ccfg)
	if errdefs.IsAlreadyExists(err) {
		// Left by a run whose clean-up did not finish (a crash): replace it.
		s.deleteRuntimeContainer(ctx, c.ID)
		ctr, err = s.client.NewContainer(ctx, c.ID, ccfg)
	}
	if err != nil {
		return err
	}
	c.runtimeDeleted = false
	tr.step("ctr-create")
	defer func() {
		if retErr != nil {
			_ = ctr.Delete(context.WithoutCancel(ctx))
		}
	}()
	lw, err := openLog(c)
	if err != nil {
		return err
	}
	if c.streams == nil {
		c.streams = newStreams(c.Config.OpenStdin)
	}
	st := c.streams
	closeIO, setTask := stdinCloser()
	task, err := ctr.NewTask(ctx, ltypes.TaskConfig{IOConfig: ltypes.IOConfig{
		FIFODir: s.cfg.fifoDir(c.ID), Terminal: c.Config.Tty, Stdin: c.Config.OpenStdin,
		Stdio: func(stdio ltypes.Stdio) error {
			st.run(stdio, lw, closeIO)
			return nil
		},
	}})
	setTask(task)
	tr.step("task-create")
	if err != nil {
		if lw != nil {
			lw.Close()
		}
		return err
	}
	exited := make(chan struct{})
	c.exited = exited
	if err := task.Start(ctx); err != nil {
		_, _ = task.ForceDelete(context.WithoutCancel(ctx))
		if lw != nil {
			lw.Close()
		}
		c.exited = nil
		close(exited)
		return err
	}
	tr.step("task-start")
	c.task = task
	c.ctr = ctr
	c.logw = lw
	c.HasBeenStartedBefore = true
	c.State.SetRunning(int(task.Pid()), true)
	if cs := c.HostConfig.ConsoleSize; c.Config.Tty && cs[0] > 0 && cs[1] > 0 {
		_ = task.Resize(ctx, uint32(cs[1]), uint32(cs[0]))
	}
	if err := c.save(); err != nil {
		log.G(ctx).WithError(err).Warn("save container state")
	}
	tr.step("save")
	s.logEvent(c, "start", nil)
	s.procs.startHealth(c)
	return nil
}

// stdinCloser returns the closeIO callback of a run and the setter that arms it once the task exists
// (stdin may end before NewTask returns).
func stdinCloser() (closeIO func(), set func(interface{ CloseStdin(context.Context) error })) {
	ready := make(chan struct{})
	var t interface{ CloseStdin(context.Context) error }
	return func() {
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
				return
			}
			if t != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = t.CloseStdin(ctx)
			}
		}, func(task interface{ CloseStdin(context.Context) error }) {
			t = task
			close(ready)
		}
}

// deleteRuntimeContainer removes a containerd container left by an earlier run (and its dead task).
func (s *lifecycle) deleteRuntimeContainer(ctx context.Context, id string) {
	ctr, err := s.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	if t, err := ctr.Task(ctx, nil); err == nil {
		if _, err := t.ForceDelete(ctx); err != nil {
			log.G(ctx).WithError(err).WithField("container", id).Warn("delete stale task")
		}
	}
	if err := ctr.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("container", id).Warn("delete stale containerd container")
	}
}

var errNotRunning = func(id string) error {
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", id))
}

var _ = errors.Wrap
