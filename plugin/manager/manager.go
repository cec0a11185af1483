// Package manager owns the lifecycle of managed (v2) plugins: the on-disk store under
// <data-root>/plugins (one directory per plugin ID holding config.json and rootfs/), reload at start-up
// (enabled plugins are started again; broken entries are quarantined, never fatal), create from a tar,
// install from a registry (pull, with privileges checked), push, upgrade of a disabled plugin,
// enable (start the task, wait for its socket, activate), disable, set, remove, restart of a plugin whose
// task exits while enabled, and reference counting for volume drivers. It is the plugin router's backend
// and the managed index of plugin/store (Get, GetAllByCap).
//
// Layout:
//
//	<Root>/<id>/config.json          v2.Record, 0600, written atomically
//	<Root>/<id>/rootfs/              the plugin's filesystem
//	<Root>/<id>/propagated-mount/    host side of Config.PropagatedMount (an rshared bind of itself)
//	<Root>/<id>-removing/            a remove that did not finish; deleted at start-up
//	<Root>/quarantine/<id>-<time>/   entries that could not be loaded
//	<Root>/tmp/                      create staging
//	<SocketRoot>/<id[:12]>/          bind-mounted at /run/docker/plugins in the plugin (its socket)
//
// It imports plugin/..., api/types, distribution (registry access, through the Registry interface) and
// containerd's archive package; never volume/... or daemon/.... Plugin tasks run through an
// executor.Executor.
package manager

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/moby/sys/atomicwriter"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/distribution/reference"
	"github.com/moby/locker"
	"github.com/pkg/errors"

	eventtypes "github.com/berthd/berthd/api/types/events"
	"github.com/berthd/berthd/api/types/filters"
	types "github.com/berthd/berthd/api/types/plugin"
	"github.com/berthd/berthd/plugin/executor"
	v2 "github.com/berthd/berthd/plugin/v2"
)

// EventLogger publishes plugin events (daemon/events.Events satisfies it).
type EventLogger interface {
	Log(action string, typ eventtypes.Type, actor eventtypes.Actor)
}

// NewExecutorFunc builds the executor, reporting task exits to h (the manager).
type NewExecutorFunc func(ctx context.Context, h executor.ExitHandler) (executor.Executor, error)

// Config configures the manager.
type Config struct {
	// Root is <data-root>/plugins.
	Root string
	// SocketRoot holds one directory per plugin, bind-mounted at /run/docker/plugins inside it
	// (<exec-root>/plugins). Keep it short: unix socket paths are limited to 108 bytes.
	SocketRoot string
	// LiveRestore, when it returns true, leaves plugin tasks running at shutdown and reattaches to them
	// at start-up. A func because the setting is reloadable; nil means false.
	LiveRestore func() bool
	// SocketWait bounds how long enable waits for the plugin's socket to answer (default 15 s).
	SocketWait time.Duration
	// StopTimeout is how long disable waits after SIGTERM, and then after SIGKILL (default 10 s).
	StopTimeout time.Duration
	// CgroupParent is the parent cgroup of plugin tasks (default /berth-plugins).
	CgroupParent string
	// DockerVersion is written into created plugins' configs.
	DockerVersion string
	// Holders, when set, names what holds references on a plugin (the volumes whose driver is one of
	// names: the plugin's reference, its short form and its ID), for the "in use" error. Bounded by the
	// caller's context.
	Holders func(ctx context.Context, names []string) []string
	// Registry is used by install (pull), push and upgrade; nil makes them NotImplemented.
	Registry Registry
}

// Manager implements the plugin router's backend and plugin/store's Managed index.
type Manager struct {
	cfg    Config
	exec   executor.Executor
	events EventLogger
	locks  *locker.Locker // per plugin ID: lifecycle operations on one plugin are serialized
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.RWMutex // guards the maps; never held during I/O
	plugins  map[string]*v2.Plugin
	reserved map[string]bool          // names being created
	exits    map[string]chan struct{} // closed when the plugin's current task exits
	crashes  map[string]crashState

	authz atomic.Pointer[AuthzChain] // authz.go
}

// New opens the store under cfg.Root, builds the executor and reloads the plugins: every plugin that was
// enabled is started again (in parallel) before New returns, so volume restore finds them. A plugin that
// cannot be loaded is quarantined and one that cannot be started ends up disabled; neither is an error.
func New(ctx context.Context, cfg Config, newExecutor NewExecutorFunc, ev EventLogger) (*Manager, error) {
	if cfg.SocketWait <= 0 {
		cfg.SocketWait = 15 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/berth-plugins"
	}
	for _, d := range []string{cfg.Root, cfg.SocketRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	tmp := filepath.Join(cfg.Root, "tmp")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(log.WithLogger(context.WithoutCancel(ctx), log.G(ctx).WithField("module", "plugins")))
	m := &Manager{
		cfg: cfg, events: ev, locks: locker.New(), ctx: bg, cancel: cancel,
		plugins: map[string]*v2.Plugin{}, reserved: map[string]bool{}, exits: map[string]chan struct{}{},
		crashes: map[string]crashState{},
	}
	ex, err := newExecutor(ctx, m)
	if err != nil {
		cancel()
		return nil, errors.Wrap(err, "plugin executor")
	}
	m.exec = ex
	m.reload(ctx)
	return m, nil
}

func (m *Manager) liveRestore() bool { return m.cfg.LiveRestore != nil && m.cfg.LiveRestore() }

func isID(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func (m *Manager) dir(id string) string { return filepath.Join(m.cfg.Root, id) }

// socketDir is short on purpose (socket paths are limited); IDs are unique in their first 12 digits
// (Create makes sure).
func (m *Manager) socketDir(id string) string { return filepath.Join(m.cfg.SocketRoot, id[:12]) }

// reload loads every plugin directory, then restores the enabled ones in parallel.
func (m *Manager) reload(ctx context.Context) {
	entries, err := os.ReadDir(m.cfg.Root)
	if err != nil {
		log.G(ctx).WithError(err).Error("reading the plugin store")
		return
	}
	var loaded []*v2.Plugin
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, "-removing"):
			if err := removeAllUnmounted(filepath.Join(m.cfg.Root, name)); err != nil {
				log.G(ctx).WithError(err).WithField("dir", name).Warn("removing the leftover of an unfinished plugin remove")
			}
			continue
		case !e.IsDir() || !isID(name):
			continue
		}
		p, err := m.load(name)
		if err != nil {
			m.quarantine(ctx, name, err)
			continue
		}
		loaded = append(loaded, p)
	}
	m.mu.Lock()
	for _, p := range loaded {
		m.plugins[p.ID()] = p
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range loaded {
		if !p.IsEnabled() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.restore(ctx, p)
		}()
	}
	wg.Wait()
}

func (m *Manager) load(id string) (*v2.Plugin, error) {
	if err := recoverUpgrade(m.dir(id)); err != nil {
		return nil, errors.Wrap(err, "recovering an interrupted upgrade")
	}
	b, err := os.ReadFile(filepath.Join(m.dir(id), "config.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errors.New("missing plugin config")
		}
		return nil, err
	}
	var rec v2.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, errors.Wrap(err, "invalid plugin config")
	}
	if rec.Plugin.ID != id {
		return nil, errors.Errorf("plugin config names ID %q", rec.Plugin.ID)
	}
	if _, err := normalizeName(rec.Plugin.Name); err != nil {
		return nil, err
	}
	if err := v2.ValidateConfig(&rec.Plugin.Config); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(m.dir(id), "rootfs")); err != nil || !fi.IsDir() {
		return nil, errors.New("no rootfs directory")
	}
	return v2.New(rec, m.dir(id)), nil
}

// quarantine moves a plugin directory that cannot be loaded aside, so it neither blocks start-up nor
// is lost.
func (m *Manager) quarantine(ctx context.Context, id string, cause error) {
	q := filepath.Join(m.cfg.Root, "quarantine")
	dst := filepath.Join(q, id+"-"+strconv.FormatInt(time.Now().Unix(), 10))
	l := log.G(ctx).WithError(cause).WithField("plugin", id)
	if err := os.MkdirAll(q, 0o700); err == nil {
		if err := os.Rename(m.dir(id), dst); err == nil {
			l.WithField("moved-to", dst).Error("cannot load managed plugin; quarantined (requires manual cleanup)")
			return
		}
	}
	l.Error("cannot load managed plugin; skipping it (requires manual cleanup)")
}

func (m *Manager) save(p *v2.Plugin) error {
	b, err := json.Marshal(p.Record())
	if err != nil {
		return err
	}
	return atomicwriter.WriteFile(filepath.Join(m.dir(p.ID()), "config.json"), b, 0o600)
}

// normalizeName turns a user's plugin name into its reference: a tag is implied (":latest") and digests
// are refused. It returns the familiar form ("vol:latest") as Name and the full one as reference.
func normalizeName(name string) (reference.NamedTagged, error) {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid plugin name %q: %v", name, err))
	}
	if _, ok := ref.(reference.Canonical); ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("canonical references are not permitted")
	}
	nt, ok := reference.TagNameOnly(ref).(reference.NamedTagged)
	if !ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid plugin name %q", name))
	}
	return nt, nil
}

func notFound(name string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", name))
}

// resolve finds a plugin by full ID, by reference (":latest" implied) or by unique ID prefix.
func (m *Manager) resolve(name string) (*v2.Plugin, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if p, ok := m.plugins[name]; ok {
		return p, nil
	}
	if ref, err := normalizeName(name); err == nil {
		want := reference.FamiliarString(ref)
		for _, p := range m.plugins {
			if p.Name() == want {
				return p, nil
			}
		}
	}
	if len(name) >= 1 && len(name) < 64 {
		if _, err := hex.DecodeString(name + strings.Repeat("0", len(name)%2)); err == nil {
			var found *v2.Plugin
			for id, p := range m.plugins {
				if strings.HasPrefix(id, name) {
					if found != nil {
						return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("multiple plugins found for %q", name))
					}
					found = p
				}
			}
			if found != nil {
				return found, nil
			}
		}
	}
	return nil, notFound(name)
}

func (m *Manager) sorted() []*v2.Plugin {
	m.mu.RLock()
	out := make([]*v2.Plugin, 0, len(m.plugins))
	for _, p := range m.plugins {
		out = append(out, p)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// AcceptedFilters are the keys GET /plugins accepts.
var AcceptedFilters = map[string]bool{"capability": true, "enabled": true}

// List returns the managed plugins matching f (capability, enabled).
func (m *Manager) List(ctx context.Context, f filters.Args) ([]types.Plugin, error) {
	if err := f.Validate(AcceptedFilters); err != nil {
		return nil, err
	}
	var enabledFilter *bool
	if f.Contains("enabled") {
		v := f.Get("enabled")
		if len(v) != 1 || (v[0] != "true" && v[0] != "false") {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'enabled=%s'", strings.Join(v, ",")))
		}
		b := v[0] == "true"
		enabledFilter = &b
	}
	out := []types.Plugin{}
	for _, p := range m.sorted() {
		if enabledFilter != nil && p.IsEnabled() != *enabledFilter {
			continue
		}
		if f.Contains("capability") {
			ok := false
			for _, c := range p.Capabilities() {
				if f.ExactMatch("capability", c) {
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		out = append(out, p.Object())
	}
	return out, nil
}

// Inspect returns one plugin.
func (m *Manager) Inspect(ctx context.Context, name string) (*types.Plugin, error) {
	p, err := m.resolve(name)
	if err != nil {
		return nil, err
	}
	o := p.Object()
	return &o, nil
}

func (m *Manager) emit(action string, p *v2.Plugin) {
	if m.events == nil {
		return
	}
	m.events.Log(action, eventtypes.PluginEventType, eventtypes.Actor{ID: p.ID(), Attributes: map[string]string{"name": p.Name()}})
}

// Shutdown stops plugin tasks (unless live-restore), keeping their enabled state on disk so they start
// again with the daemon, and closes the executor.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.cancel()
	if !m.liveRestore() {
		var wg sync.WaitGroup
		for _, p := range m.sorted() {
			if !p.IsEnabled() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.locks.Lock(p.ID())
				defer m.locks.Unlock(p.ID())
				if err := m.stop(ctx, p); err != nil {
					log.G(ctx).WithError(err).WithField("plugin", p.Name()).Warn("stopping plugin at shutdown")
				}
			}()
		}
		wg.Wait()
	}
	return m.exec.Close()
}

// Pid is the pid of an enabled plugin's task (tests and diagnostics).
func (m *Manager) Pid(ctx context.Context, name string) (uint32, error) {
	p, err := m.resolve(name)
	if err != nil {
		return 0, err
	}
	return m.exec.Pid(ctx, p.ID())
}
