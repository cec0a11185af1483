// Package v2 owns the managed (v2) plugin model: the record kept in <data-root>/plugins/<id>/config.json
// (the Engine API Plugin object plus the host rootfs path), manifest validation, the settable
// env/args/mounts/devices, the privileges a manifest asks for, and the OCI spec a plugin runs with. The
// client to a running plugin's socket is plugin/v1's (v1.NewSocketPlugin), given by the manager through
// SetEnabled.
//
// It is pure: no containerd, no file system writes, no plugin calls (the manager does I/O). It imports
// runtime-spec, api/types/plugin and plugin/getter; never volume/... or daemon/....
package v2

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	types "github.com/berthd/berthd/api/types/plugin"
	"github.com/berthd/berthd/plugin/getter"
)

// DefaultProtocolScheme is the plugin protocol when the manifest names none.
const DefaultProtocolScheme = "moby.plugins.http/v1"

// Record is the JSON of <data-root>/plugins/<id>/config.json (keys as dockerd's).
type Record struct {
	Plugin types.Plugin `json:"plugin"`
	Rootfs string       `json:"Rootfs"`
	// Timeout is the client timeout given at the last enable, in seconds (berthd keeps it across
	// restarts; dockerd forgets it).
	Timeout int `json:"Timeout,omitempty"`
}

// Plugin is one managed plugin: its persisted record and its in-memory state (reference count, client,
// restart flag). All methods are safe for concurrent use; none does I/O except through Client.
type Plugin struct {
	mu              sync.RWMutex
	obj             types.Plugin
	rootfs          string // host path of the plugin's rootfs
	propagatedMount string // host path behind Config.PropagatedMount; "" when none
	timeout         int
	refCount        int
	disabling       bool // between BeginDisable and EndDisable: Acquire refuses the plugin
	client          getter.Client
	restart         bool
}

var _ getter.CompatPlugin = (*Plugin)(nil)

// New returns a plugin from a record; dir is <data-root>/plugins/<id> (rootfs and propagated-mount are
// derived from it, whatever the record says, so a moved data root still works).
func New(rec Record, dir string) *Plugin {
	p := &Plugin{obj: rec.Plugin, rootfs: filepath.Join(dir, "rootfs"), timeout: rec.Timeout}
	if rec.Plugin.Config.PropagatedMount != "" {
		p.propagatedMount = filepath.Join(dir, "propagated-mount")
	}
	normalizeSettings(&p.obj.Settings)
	return p
}

// NewFromConfig builds a new, disabled plugin named name (a normalized reference such as "vol:latest")
// from a validated manifest: initial settings come from the manifest's values.
func NewFromConfig(id, name, ref string, cfg types.Config, dir string) *Plugin {
	obj := types.Plugin{ID: id, Name: name, PluginReference: ref, Config: cfg}
	obj.Settings = InitialSettings(cfg)
	return New(Record{Plugin: obj}, dir)
}

func normalizeSettings(s *types.Settings) {
	if s.Env == nil {
		s.Env = []string{}
	}
	if s.Args == nil {
		s.Args = []string{}
	}
	if s.Mounts == nil {
		s.Mounts = []types.Mount{}
	}
	if s.Devices == nil {
		s.Devices = []types.Device{}
	}
}

// InitialSettings are a new plugin's settings: env entries with a value, the args value, the mounts and
// devices as declared.
func InitialSettings(cfg types.Config) types.Settings {
	var s types.Settings
	for _, e := range cfg.Env {
		if e.Value != nil {
			s.Env = append(s.Env, e.Name+"="+*e.Value)
		}
	}
	s.Args = append([]string(nil), cfg.Args.Value...)
	for _, m := range cfg.Mounts {
		s.Mounts = append(s.Mounts, copyMount(m))
	}
	for _, d := range cfg.Linux.Devices {
		s.Devices = append(s.Devices, copyDevice(d))
	}
	normalizeSettings(&s)
	return s
}

func copyMount(m types.Mount) types.Mount {
	m.Settable = append([]string(nil), m.Settable...)
	m.Options = append([]string(nil), m.Options...)
	if m.Source != nil {
		v := *m.Source
		m.Source = &v
	}
	return m
}

func copyDevice(d types.Device) types.Device {
	d.Settable = append([]string(nil), d.Settable...)
	if d.Path != nil {
		v := *d.Path
		d.Path = &v
	}
	return d
}

// Record is the plugin's persistent form.
func (p *Plugin) Record() Record {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return Record{Plugin: cloneObj(p.obj), Rootfs: p.rootfs, Timeout: p.timeout}
}

// Object is a copy of the API object.
func (p *Plugin) Object() types.Plugin {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return cloneObj(p.obj)
}

func cloneObj(o types.Plugin) types.Plugin {
	s := o.Settings
	o.Settings = types.Settings{Env: append([]string{}, s.Env...), Args: append([]string{}, s.Args...)}
	o.Settings.Mounts = []types.Mount{}
	for _, m := range s.Mounts {
		o.Settings.Mounts = append(o.Settings.Mounts, copyMount(m))
	}
	o.Settings.Devices = []types.Device{}
	for _, d := range s.Devices {
		o.Settings.Devices = append(o.Settings.Devices, copyDevice(d))
	}
	return o
}

// ID is the plugin's 64-hex ID.
func (p *Plugin) ID() string { return p.obj.ID }

// Name is the plugin's reference as the user sees it ("vol:latest").
func (p *Plugin) Name() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.obj.Name
}

// IsV1 is false: a managed plugin.
func (p *Plugin) IsV1() bool { return false }

// Rootfs is the host path of the plugin's filesystem.
func (p *Plugin) Rootfs() string { return p.rootfs }

// PropagatedMountHost is the host directory behind Config.PropagatedMount ("" when none).
func (p *Plugin) PropagatedMountHost() string { return p.propagatedMount }

// Config is the plugin's manifest (shared: callers must not modify it).
func (p *Plugin) Config() types.Config {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.obj.Config
}

// ScopedPath maps a path as the plugin sees it (inside its rootfs) to the host: under PropagatedMount
// it is the propagated-mount directory, elsewhere the rootfs.
func (p *Plugin) ScopedPath(path string) string {
	pm := p.Config().PropagatedMount
	if p.propagatedMount != "" && pm != "" {
		rel, ok := underPath(filepath.Clean(path), filepath.Clean(pm))
		if ok {
			return filepath.Join(p.propagatedMount, rel)
		}
	}
	return filepath.Join(p.rootfs, filepath.Clean("/"+path))
}

// underPath reports whether path is base or below it, and the rest.
func underPath(path, base string) (string, bool) {
	if path == base {
		return "", true
	}
	if base == "/" {
		return path, true
	}
	if strings.HasPrefix(path, base+"/") {
		return strings.TrimPrefix(path, base), true
	}
	return "", false
}

// Client is the HTTP client to the running plugin; nil while it is disabled.
func (p *Plugin) Client() getter.Client {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.client == nil {
		return disabledClient{name: p.obj.Name}
	}
	return p.client
}

type disabledClient struct{ name string }

func (c disabledClient) CallContext(_ context.Context, _ string, _, _ any) error {
	return errdefs.ErrUnavailable.WithMessage("plugin " + c.name + " is not enabled")
}

// IsEnabled reports the persisted enabled state.
func (p *Plugin) IsEnabled() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.obj.Enabled
}

// SetEnabled records the enabled state; enabled with a client (connected to the socket), disabled
// drops the client.
func (p *Plugin) SetEnabled(enabled bool, c getter.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.obj.Enabled = enabled
	if enabled {
		p.client = c
	} else {
		p.client = nil
	}
}

// Timeout is the client timeout given at enable (seconds; 0: the default per-call deadlines).
func (p *Plugin) Timeout() time.Duration {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return time.Duration(p.timeout) * time.Second
}

// SetTimeout records the enable timeout in seconds.
func (p *Plugin) SetTimeout(sec int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timeout = sec
}

// Restart is whether an exit of the plugin's task should start it again (set while enabled).
func (p *Plugin) Restart() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.restart
}

// SetRestart sets the restart flag.
func (p *Plugin) SetRestart(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.restart = v
}

// RefCount is the number of references taken with Acquire (volumes on this driver).
func (p *Plugin) RefCount() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.refCount
}

// Acquire takes a reference if the plugin is enabled and not being disabled; false otherwise. The check
// and the count are one step under the plugin's lock, so a Disable that found no references cannot be
// followed by a reference on the plugin it is stopping.
func (p *Plugin) Acquire() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.obj.Enabled || p.disabling {
		return false
	}
	p.refCount++
	return true
}

// Release gives back a reference; the count never goes below zero.
func (p *Plugin) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refCount > 0 {
		p.refCount--
	}
}

// BeginDisable marks the plugin as being disabled, so that Acquire refuses it from now on, unless it
// holds references and force is false: then it returns their number and false. EndDisable clears the
// mark, whether the plugin was disabled or the attempt failed.
func (p *Plugin) BeginDisable(force bool) (refs int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refCount > 0 && !force {
		return p.refCount, false
	}
	p.disabling = true
	return p.refCount, true
}

// EndDisable ends what BeginDisable began.
func (p *Plugin) EndDisable() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.disabling = false
}

// Capabilities are the manifest's capabilities for "docker" interface types, lower-cased
// ("volumedriver").
func (p *Plugin) Capabilities() []string {
	var out []string
	for _, t := range p.Config().Interface.Types {
		it, err := ParseInterfaceType(t)
		if err == nil && it.Prefix == "docker" {
			out = append(out, it.Capability)
		}
	}
	return out
}

// HasCapability reports whether the plugin implements capability (case-insensitive, "VolumeDriver").
func (p *Plugin) HasCapability(capability string) bool {
	for _, c := range p.Capabilities() {
		if strings.EqualFold(c, capability) {
			return true
		}
	}
	return false
}

// SocketName is the socket file the plugin creates in /run/docker/plugins.
func (p *Plugin) SocketName() string { return p.Config().Interface.Socket }
