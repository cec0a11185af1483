package v2

import (
	"path"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	types "github.com/berthd/berthd/api/types/plugin"
)

// PluginSocketDirInside is where a plugin creates its socket, in its own filesystem.
const PluginSocketDirInside = "/run/docker/plugins"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SpecOptions is what the spec needs from the host.
type SpecOptions struct {
	// SocketDir is the plugin's host directory bind-mounted at /run/docker/plugins (required).
	SocketDir string
	// CgroupsPath is the plugin's cgroup (e.g. "/berth-plugins/<id>"); empty lets the runtime choose.
	CgroupsPath string
	// Device resolves a host device path for Settings.Devices (type, major, minor); required only when
	// a device has a path.
	Device func(path string) (specs.LinuxDevice, error)
}

// DefaultCapabilities are the capabilities every plugin has (Docker's default container set); the
// manifest's Linux.Capabilities are added.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
	"CAP_KILL", "CAP_AUDIT_WRITE",
}

// InitSpec builds the OCI spec the plugin runs with. See BuildSpec.
func (p *Plugin) InitSpec(o SpecOptions) (*specs.Spec, error) {
	return BuildSpec(p.Object(), p.rootfs, p.propagatedMount, o)
}

// BuildSpec builds a plugin's OCI spec (pure): root = rootfs (read-write); default mounts, then the
// PropagatedMount bind (rshared, from propagatedHost), the manifest's mounts with their set sources, the
// socket dir at /run/docker/plugins and, with a network type, the host's /etc/hosts and /etc/resolv.conf
// read-only; namespaces as the manifest asks; process = Entrypoint + Settings.Args with PATH +
// Settings.Env, cwd WorkDir or "/"; default capabilities + Linux.Capabilities.
func BuildSpec(obj types.Plugin, rootfs, propagatedHost string, o SpecOptions) (*specs.Spec, error) {
	cfg := obj.Config
	if o.SocketDir == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("plugin spec: no socket directory")
	}
	if len(cfg.Entrypoint) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("plugin spec: empty entrypoint")
	}
	s := defaultSpec(obj.ID)
	s.Root = &specs.Root{Path: rootfs}
	s.Linux.CgroupsPath = o.CgroupsPath

	var user []specs.Mount
	if cfg.PropagatedMount != "" {
		if propagatedHost == "" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("plugin spec: no host directory for the propagated mount")
		}
		user = append(user, specs.Mount{
			Destination: path.Clean(cfg.PropagatedMount), Type: "bind", Source: propagatedHost,
			Options: []string{"rbind", "rw", "rshared"},
		})
		s.Linux.RootfsPropagation = "rshared"
	}
	for _, m := range mergedMounts(cfg.Mounts, obj.Settings.Mounts) {
		if m.Source == nil || *m.Source == "" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("mount source is not specified")
		}
		typ := m.Type
		if typ == "" {
			typ = "bind"
		}
		opts := append([]string(nil), m.Options...)
		if typ == "bind" && !hasOpt(opts, "bind") && !hasOpt(opts, "rbind") {
			opts = append(opts, "rbind")
		}
		user = append(user, specs.Mount{Destination: path.Clean(m.Destination), Type: typ, Source: *m.Source, Options: opts})
	}
	user = append(user, specs.Mount{
		Destination: PluginSocketDirInside, Type: "bind", Source: o.SocketDir,
		Options: []string{"rbind", "rshared"},
	})
	if cfg.Network.Type != "" {
		for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
			user = append(user, specs.Mount{Destination: f, Type: "bind", Source: f, Options: []string{"rbind", "ro"}})
		}
	}
	// A default mount the manifest also mounts (e.g. /dev/shm) gives way to the manifest's.
	taken := map[string]bool{}
	for _, m := range user {
		taken[m.Destination] = true
	}
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		if taken[m.Destination] {
			continue
		}
		mounts = append(mounts, m)
	}
	s.Mounts = append(mounts, user...)

	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		switch {
		case n.Type == specs.NetworkNamespace && cfg.Network.Type == "host",
			n.Type == specs.PIDNamespace && cfg.PidHost,
			n.Type == specs.IPCNamespace && cfg.IpcHost:
			continue
		}
		ns = append(ns, n)
	}
	s.Linux.Namespaces = ns

	if cfg.Linux.AllowAllDevices {
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, d := range mergedDevices(cfg.Linux.Devices, obj.Settings.Devices) {
		if d.Path == nil || *d.Path == "" {
			continue
		}
		if o.Device == nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("plugin spec: cannot resolve device " + *d.Path)
		}
		dev, err := o.Device(*d.Path)
		if err != nil {
			return nil, err
		}
		s.Linux.Devices = append(s.Linux.Devices, dev)
		major, minor := dev.Major, dev.Minor
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: "rwm",
		})
	}

	s.Process.Args = append(append([]string(nil), cfg.Entrypoint...), obj.Settings.Args...)
	s.Process.Env = append([]string{defaultPath}, obj.Settings.Env...)
	if cfg.WorkDir != "" {
		s.Process.Cwd = cfg.WorkDir
	}
	caps := append(append([]string(nil), DefaultCapabilities...), cfg.Linux.Capabilities...)
	caps = dedup(caps)
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Permitted: caps, Effective: caps,
		Inheritable: append([]string(nil), cfg.Linux.Capabilities...),
	}
	return s, nil
}

// mergedMounts are the manifest's mounts with sources set by `docker plugin set` (Settings win).
func mergedMounts(cfg []types.Mount, set []types.Mount) []types.Mount {
	out := make([]types.Mount, 0, len(cfg))
	for _, m := range cfg {
		m = copyMount(m)
		for _, sm := range set {
			if m.Name != "" && sm.Name == m.Name && sm.Source != nil {
				v := *sm.Source
				m.Source = &v
			}
		}
		out = append(out, m)
	}
	return out
}

func mergedDevices(cfg []types.Device, set []types.Device) []types.Device {
	out := make([]types.Device, 0, len(cfg))
	for _, d := range cfg {
		d = copyDevice(d)
		for _, sd := range set {
			if d.Name != "" && sd.Name == d.Name && sd.Path != nil {
				v := *sd.Path
				d.Path = &v
			}
		}
		out = append(out, d)
	}
	return out
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func dedup(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func defaultSpec(id string) *specs.Spec {
	rwm := "rwm"
	dev := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: rwm}
	}
	ptsMajor := int64(136)
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: "",
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Cwd:  "/",
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{
					{Allow: false, Access: rwm},
					dev(1, 3), dev(1, 5), dev(1, 7), dev(1, 8), dev(1, 9), dev(5, 0), dev(5, 2),
					{Allow: true, Type: "c", Major: &ptsMajor, Access: rwm},
				},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
				"/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}
