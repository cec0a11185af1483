package manager

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"

	v1 "github.com/berthd/berthd/plugin/v1"
	v2 "github.com/berthd/berthd/plugin/v2"
)

// Enable starts a disabled plugin and waits until its socket answers. timeout (seconds) becomes the
// plugin's HTTP client timeout; 0 keeps per-call defaults.
func (m *Manager) Enable(ctx context.Context, name string, timeout int) error {
	p, err := m.resolve(name)
	if err != nil {
		return err
	}
	if timeout < 0 {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid timeout %d", timeout))
	}
	m.locks.Lock(p.ID())
	defer m.locks.Unlock(p.ID())
	if p.IsEnabled() {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s is already enabled", p.Name()))
	}
	p.SetTimeout(timeout)
	if err := m.start(ctx, p); err != nil {
		return err
	}
	m.emit("enable", p)
	return nil
}

// Disable stops an enabled plugin. Without force a plugin holding references (volumes) is refused.
func (m *Manager) Disable(ctx context.Context, name string, force bool) error {
	p, err := m.resolve(name)
	if err != nil {
		return err
	}
	m.locks.Lock(p.ID())
	defer m.locks.Unlock(p.ID())
	if !p.IsEnabled() {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s is already disabled", p.Name()))
	}
	// From here no new reference can be taken (Acquire does not take the lifecycle lock, which is held
	// across the plugin's stop).
	n, ok := p.BeginDisable(force)
	defer p.EndDisable()
	if !ok {
		return m.inUse(ctx, p, n)
	}
	if err := checkAuthzDisable(ctx, m, p, force); err != nil {
		return err
	}
	if err := m.stop(ctx, p); err != nil {
		return err
	}
	p.SetEnabled(false, nil)
	if err := m.save(p); err != nil {
		return err
	}
	m.emit("disable", p)
	return nil
}

// inUse is the Conflict for a plugin holding references, naming the holders when they can be found.
func (m *Manager) inUse(ctx context.Context, p *v2.Plugin, n int) error {
	var holders []string
	if m.cfg.Holders != nil {
		names := []string{p.Name(), p.ID()}
		if short, ok := strings.CutSuffix(p.Name(), ":latest"); ok {
			names = append(names, short)
		}
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		holders = m.cfg.Holders(hctx, names)
		cancel()
	}
	if len(holders) == 0 {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s is in use (%d references)", p.Name(), n))
	}
	sort.Strings(holders)
	more := ""
	if len(holders) > 10 {
		more = fmt.Sprintf(" and %d more", len(holders)-10)
		holders = holders[:10]
	}
	return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s is in use by volumes %s%s", p.Name(), strings.Join(holders, ", "), more))
}

// Remove deletes a disabled, unused plugin; force disables it first and ignores references.
func (m *Manager) Remove(ctx context.Context, name string, force bool) error {
	p, err := m.resolve(name)
	if err != nil {
		return err
	}
	m.locks.Lock(p.ID())
	defer m.locks.Unlock(p.ID())
	if !force {
		if n := p.RefCount(); n > 0 {
			return m.inUse(ctx, p, n)
		}
		if p.IsEnabled() {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("plugin %s is enabled", p.Name()))
		}
	}
	// Forced, or disabled (so Acquire refuses it): no reference can be taken from here on.
	if _, ok := p.BeginDisable(true); ok {
		defer p.EndDisable()
	}
	if p.IsEnabled() {
		if err := checkAuthzDisable(ctx, m, p, force); err != nil {
			return err
		}
		if err := m.stop(ctx, p); err != nil {
			return err
		}
		p.SetEnabled(false, nil)
	}
	m.mu.Lock()
	delete(m.plugins, p.ID())
	m.mu.Unlock()
	dir := m.dir(p.ID())
	removing := dir + "-removing"
	if err := os.Rename(dir, removing); err != nil {
		return errors.Wrap(err, "remove plugin")
	}
	if err := removeAllUnmounted(removing); err != nil {
		log.G(ctx).WithError(err).WithField("plugin", p.Name()).Warn("plugin removed, but its directory could not be deleted; retried at next start")
	}
	os.RemoveAll(m.socketDir(p.ID()))
	m.emit("remove", p)
	return nil
}

// Set changes settings of a disabled plugin.
func (m *Manager) Set(ctx context.Context, name string, args []string) error {
	p, err := m.resolve(name)
	if err != nil {
		return err
	}
	m.locks.Lock(p.ID())
	defer m.locks.Unlock(p.ID())
	if err := p.Set(args); err != nil {
		return err
	}
	return m.save(p)
}

// start runs the plugin's task and waits for its socket; on success the plugin is enabled and saved.
// Caller holds the plugin's lock.
func (m *Manager) start(ctx context.Context, p *v2.Plugin) error {
	id := p.ID()
	sock := m.socketDir(id)
	os.RemoveAll(sock)
	if err := os.MkdirAll(sock, 0o700); err != nil {
		return err
	}
	if pm := p.PropagatedMountHost(); pm != "" {
		if err := makeRShared(pm); err != nil {
			return errors.Wrap(err, "prepare the plugin's propagated mount")
		}
	}
	spec, err := p.InitSpec(v2.SpecOptions{
		SocketDir:   sock,
		CgroupsPath: filepath.Join(m.cfg.CgroupParent, id),
		Device:      deviceInfo,
	})
	if err != nil {
		return err
	}
	exited := make(chan struct{})
	m.mu.Lock()
	m.exits[id] = exited
	m.mu.Unlock()
	p.SetRestart(true)
	lctx := log.WithLogger(m.ctx, log.G(m.ctx).WithField("plugin", id))
	stdout, stderr := logWriter(lctx, false), logWriter(lctx, true)
	if err := m.exec.Create(ctx, id, spec, stdout, stderr); err != nil {
		// The executor may not have taken the writers; closing twice is harmless.
		stdout.Close()
		stderr.Close()
		p.SetRestart(false)
		m.cleanupMounts(ctx, p)
		return errors.Wrapf(err, "start plugin %s", p.Name())
	}
	return m.postStart(ctx, p)
}

// postStart waits for the socket to answer the activation handshake, then marks the plugin enabled.
// On failure the task is stopped and the plugin left disabled.
func (m *Manager) postStart(ctx context.Context, p *v2.Plugin) error {
	path := filepath.Join(m.socketDir(p.ID()), p.SocketName())
	if len(path) >= maxSocketPath {
		m.stopQuietly(ctx, p)
		return errors.Errorf("plugin %s: socket path %s is too long (unix sockets are limited to %d bytes): use a shorter --exec-root", p.Name(), path, maxSocketPath-1)
	}
	c := v1.NewSocketPlugin(p.Name(), path, v1.Config{Timeouts: v1.UniformTimeouts(p.Timeout())})
	if err := waitSocket(ctx, path, c, m.cfg.SocketWait); err != nil {
		m.stopQuietly(ctx, p)
		return errors.Wrapf(err, "plugin %s did not start", p.Name())
	}
	p.SetEnabled(true, c)
	return m.save(p)
}

// maxSocketPath is sizeof(sockaddr_un.sun_path) on Linux.
const maxSocketPath = 108

// stopQuietly stops a plugin that failed to come up and leaves it disabled.
func (m *Manager) stopQuietly(ctx context.Context, p *v2.Plugin) {
	if err := m.stop(context.WithoutCancel(ctx), p); err != nil {
		log.G(ctx).WithError(err).WithField("plugin", p.Name()).Warn("stopping a plugin that did not start")
	}
	p.SetEnabled(false, nil)
}

// waitSocket polls until the plugin's socket accepts connections and c's activation succeeds. It dials
// before activating so that a socket not yet listening does not count toward c's fail-fast threshold.
func waitSocket(ctx context.Context, path string, c *v1.Plugin, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	var last error
	for {
		if _, err := os.Stat(path); err == nil {
			conn, err := net.DialTimeout("unix", path, time.Second)
			if err == nil {
				conn.Close()
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = c.Activate(actx)
				cancel()
				if err == nil {
					return nil
				}
			}
			last = err
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return errors.Wrapf(last, "its socket %s did not answer within %v", path, bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the plugin's task: SIGTERM, then SIGKILL, each followed by StopTimeout of waiting for the
// exit. The restart flag is cleared first so the exit is not answered by a restart. Caller holds the
// plugin's lock.
func (m *Manager) stop(ctx context.Context, p *v2.Plugin) error {
	id := p.ID()
	p.SetRestart(false)
	m.mu.RLock()
	exited := m.exits[id]
	m.mu.RUnlock()
	running, err := m.exec.IsRunning(ctx, id)
	if err != nil {
		return err
	}
	if running {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			if err := m.exec.Signal(ctx, id, sig); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).WithField("plugin", p.Name()).Warn("signalling plugin")
			}
			if running = !m.waitExit(ctx, id, exited, m.cfg.StopTimeout); !running {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.G(ctx).WithField("plugin", p.Name()).WithField("signal", sig).Warn("plugin did not exit in time")
		}
		if running {
			return errors.Errorf("plugin %s did not stop", p.Name())
		}
	}
	m.cleanupMounts(ctx, p)
	os.RemoveAll(m.socketDir(id))
	return nil
}

// waitExit waits up to d for the plugin's task to be gone: its exit notification when there is one,
// otherwise by polling the executor.
func (m *Manager) waitExit(ctx context.Context, id string, exited chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return true
		case <-tick.C:
			if exited == nil {
				if ok, err := m.exec.IsRunning(ctx, id); err == nil && !ok {
					return true
				}
			}
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Crash-loop backoff: a plugin that exits again within crashWindow of its last exit waits twice as long
// before its restart, up to maxCrashDelay.
const (
	minCrashDelay = 200 * time.Millisecond
	maxCrashDelay = 30 * time.Second
	crashWindow   = time.Minute
)

type crashState struct {
	last  time.Time
	delay time.Duration
}

func (m *Manager) crashDelay(id string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.crashes[id]
	if c.delay == 0 || time.Since(c.last) > crashWindow {
		c.delay = minCrashDelay
	} else {
		c.delay = min(2*c.delay, maxCrashDelay)
	}
	c.last = time.Now()
	m.crashes[id] = c
	return c.delay
}

// HandleExitEvent implements executor.ExitHandler: a plugin whose task exits while enabled is started
// again; otherwise its mounts are cleaned up.
func (m *Manager) HandleExitEvent(id string) error {
	m.mu.Lock()
	p := m.plugins[id]
	if ch, ok := m.exits[id]; ok {
		close(ch)
		delete(m.exits, id)
	}
	m.mu.Unlock()
	if p == nil || !p.Restart() {
		return nil
	}
	ctx := m.ctx
	delay := m.crashDelay(id)
	l := log.G(ctx).WithField("plugin", p.Name())
	l.WithField("delay", delay).Warn("plugin exited while enabled; restarting it")
	for attempt := 0; attempt < 5; attempt++ {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay + time.Duration(attempt*attempt)*time.Second):
		}
		m.locks.Lock(id)
		if !p.Restart() || !p.IsEnabled() {
			m.locks.Unlock(id)
			return nil
		}
		err := m.start(ctx, p)
		m.locks.Unlock(id)
		if err == nil {
			l.Info("plugin restarted")
			return nil
		}
		l.WithError(err).Warn("restarting plugin failed")
	}
	m.locks.Lock(id)
	defer m.locks.Unlock(id)
	p.SetEnabled(false, nil)
	p.SetRestart(false)
	if err := m.save(p); err != nil {
		return err
	}
	return errors.Errorf("plugin %s could not be restarted; it is now disabled", p.Name())
}

// restore brings a plugin that was enabled at the last save back: reattach (live-restore) or start
// afresh. A failure is logged and leaves the plugin disabled.
func (m *Manager) restore(ctx context.Context, p *v2.Plugin) {
	id := p.ID()
	m.locks.Lock(id)
	defer m.locks.Unlock(id)
	l := log.G(ctx).WithField("plugin", p.Name())
	if m.liveRestore() {
		lctx := log.WithLogger(m.ctx, log.G(m.ctx).WithField("plugin", id))
		exited := make(chan struct{})
		m.mu.Lock()
		m.exits[id] = exited
		m.mu.Unlock()
		stdout, stderr := logWriter(lctx, false), logWriter(lctx, true)
		alive, err := m.exec.Restore(ctx, id, stdout, stderr)
		if err != nil {
			l.WithError(err).Warn("reattaching to plugin task")
		}
		if !alive {
			stdout.Close()
			stderr.Close()
		}
		if alive {
			p.SetRestart(true)
			if err := m.postStart(ctx, p); err == nil {
				return
			}
		}
	}
	p.SetEnabled(false, nil)
	if err := m.start(ctx, p); err != nil {
		l.WithError(err).Error("failed to start plugin that was enabled; it is now disabled")
		if err := m.save(p); err != nil {
			l.WithError(err).Error("saving plugin state")
		}
	}
}

// logWriter copies a plugin's output into the daemon log, one entry a line.
func logWriter(ctx context.Context, stderr bool) io.WriteCloser {
	r, w := io.Pipe()
	go func() {
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			if stderr {
				log.G(ctx).Error(s.Text())
			} else {
				log.G(ctx).Info(s.Text())
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return w
}

// makeRShared makes dir an rshared bind mount of itself, so mounts the plugin makes below its
// PropagatedMount appear on the host.
func makeRShared(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return err
	}
	if !mounted {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return errors.Wrapf(err, "bind mount %s", dir)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return errors.Wrapf(err, "make %s rshared", dir)
	}
	return nil
}

// cleanupMounts unmounts everything under the plugin's directory (the propagated mount and whatever
// the plugin mounted below it).
func (m *Manager) cleanupMounts(ctx context.Context, p *v2.Plugin) {
	if err := unmountUnder(m.dir(p.ID())); err != nil {
		log.G(ctx).WithError(err).WithField("plugin", p.Name()).Warn("unmounting plugin mounts")
	}
}

func unmountUnder(dir string) error {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].Mountpoint) > len(ms[j].Mountpoint) })
	var first error
	for _, mi := range ms {
		if err := unix.Unmount(mi.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT && first == nil {
			first = errors.Wrapf(err, "unmount %s", mi.Mountpoint)
		}
	}
	return first
}

// removeAllUnmounted deletes dir after unmounting whatever is mounted below it, so RemoveAll never
// walks into a plugin's mounts.
func removeAllUnmounted(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// deviceInfo describes a host device for the plugin's spec.
func deviceInfo(path string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, errors.Wrapf(err, "device %s", path)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is not a device", path))
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	if !strings.HasPrefix(path, "/dev/") {
		return specs.LinuxDevice{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("device %s is not under /dev", path))
	}
	return specs.LinuxDevice{
		Path: path, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}
