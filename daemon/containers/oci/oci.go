// Package oci builds the OCI runtime spec of a container from what the container service resolved: the
// process (args, env, user, cwd, terminal), its mounts, namespaces, capabilities, cgroup limits and the
// read-only/masked paths, and the confinement (seccomp, no_new_privs; security.go). It is pure (no
// containerd; the only I/O is the seccomp library's kernel-version check for its conditional rules): every
// decision is table-tested here, and the container service only gathers inputs. It imports the
// runtime-spec, errdefs and github.com/moby/profiles/seccomp (dockerd's default profile) only.
package oci

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mount is one mount to add to the spec (volumes, binds, tmpfs, the generated /etc files).
type Mount struct {
	Destination string
	Type        string // "bind" or "tmpfs"
	Source      string
	Options     []string
}

// User is the resolved identity of the process.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
}

// Options is everything the spec depends on.
type Options struct {
	Args     []string
	Env      []string
	Cwd      string
	User     User
	Terminal bool
	Hostname string
	// Domainname is the UTS domain name (--domainname).
	Domainname string

	ReadonlyRootfs bool
	Mounts         []Mount
	// Tmpfs is --tmpfs: destination -> comma-separated mount options.
	Tmpfs map[string]string
	// ShmSize is the size of /dev/shm in bytes; 0 means 64 MiB.
	ShmSize int64

	// HostNetwork shares the host's network namespace; otherwise the container gets its own (with only
	// loopback, which runc brings up), or joins NetNSPath when set.
	HostNetwork bool
	NetNSPath   string
	HostPID     bool
	HostIPC     bool
	HostUTS     bool
	// CgroupNS makes a private cgroup namespace (cgroup v2's default).
	CgroupNS bool

	Privileged bool
	CapAdd     []string
	CapDrop    []string
	// LastCap is the highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap); 0 means
	// CAP_CHECKPOINT_RESTORE (40).
	LastCap int
	// Bounding is the daemon's own bounding set (bit n = capability n); "all capabilities" means all of
	// these, since no process can grant more. 0 means no restriction.
	Bounding uint64

	CgroupsPath string
	Memory      int64
	MemorySwap  int64
	NanoCPUs    int64
	CPUShares   int64
	CPUQuota    int64
	CPUPeriod   int64
	CpusetCpus  string
	PidsLimit   int64
	OomScoreAdj int
	Sysctls     map[string]string

	// MaskedPaths and ReadonlyPaths replace the defaults when non-nil (privileged containers get none).
	MaskedPaths   []string
	ReadonlyPaths []string

	// Devices are device nodes to create in the container (--device, or every host device when
	// privileged), each allowed in the device cgroup with its permissions.
	Devices []Device
	// Rlimits are --ulimit values.
	Rlimits []specs.POSIXRlimit

	// InitPath, when set, runs the process under an init (tini) bind-mounted from this host path at
	// InitTarget.
	InitPath string

	// Security is seccomp, no_new_privs, AppArmor and the cgroup mount's mode (security.go).
	Security Security
	// Extra holds the settings applied by applyExtra (separate from the rest of Build).
	Extra Extra
}

// Device is one device node of the container.
type Device struct {
	specs.LinuxDevice
	// Permissions is the cgroup access ("rwm" by default).
	Permissions string
}

// InitTarget is where the init binary appears in the container (dockerd's docker-init path).
const InitTarget = "/sbin/docker-init"

// DefaultCapabilities is dockerd's default capability set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// allCapabilities is indexed by capability number.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultMaskedPaths and DefaultReadonlyPaths are dockerd's.
var (
	DefaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func knownCaps(last int, bounding uint64) []string {
	if last <= 0 || last >= len(allCapabilities) {
		last = len(allCapabilities) - 1
	}
	if bounding == 0 {
		return allCapabilities[:last+1]
	}
	var out []string
	for i := 0; i <= last; i++ {
		if bounding&(1<<uint(i)) != 0 {
			out = append(out, allCapabilities[i])
		}
	}
	return out
}

func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" {
		return c
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// Capabilities computes the capability set as dockerd does: defaults (or all, privileged), then drops,
// then adds; "ALL" in either list means every capability. Unknown names are invalid arguments.
func Capabilities(privileged bool, add, drop []string, last int, bounding uint64) ([]string, error) {
	known := knownCaps(last, bounding)
	isKnown := map[string]bool{}
	for _, c := range allCapabilities {
		isKnown[c] = true
	}
	check := func(list []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, c := range list {
			n := normalizeCap(c)
			if n == "ALL" {
				all = true
				continue
			}
			if !isKnown[n] {
				return nil, false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unknown capability: %q", n))
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	adds, addAll, err := check(add)
	if err != nil {
		return nil, err
	}
	drops, dropAll, err := check(drop)
	if err != nil {
		return nil, err
	}
	if privileged {
		return append([]string(nil), known...), nil
	}
	if addAll {
		// dockerd: every capability except the ones dropped.
		dropped := map[string]bool{}
		for _, c := range drops {
			dropped[c] = true
		}
		out := []string{}
		for _, c := range known {
			if !dropped[c] {
				out = append(out, c)
			}
		}
		return out, nil
	}
	set := map[string]bool{}
	if !dropAll {
		for _, c := range DefaultCapabilities {
			set[c] = true
		}
		for _, c := range drops {
			delete(set, c)
		}
	}
	for _, c := range adds {
		set[c] = true
	}
	out := []string{}
	for _, c := range known {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

func defaultMounts(shmSize int64, privileged bool) []specs.Mount {
	if shmSize <= 0 {
		shmSize = 64 << 20
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev"}
		cgOpts = []string{"rw", "nosuid", "noexec", "nodev"}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%d", shmSize)}},
	}
}

// mountDepth orders mounts so that a parent is mounted before what is mounted inside it.
func mountDepth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

func deviceRules(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	i := func(v int64) *int64 { return &v }
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(5), Access: "rwm"},    // zero
		{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"},    // null
		{Allow: true, Type: "c", Major: i(1), Minor: i(9), Access: "rwm"},    // urandom
		{Allow: true, Type: "c", Major: i(1), Minor: i(8), Access: "rwm"},    // random
		{Allow: true, Type: "c", Major: i(1), Minor: i(7), Access: "rwm"},    // full
		{Allow: true, Type: "c", Major: i(5), Minor: i(0), Access: "rwm"},    // tty
		{Allow: true, Type: "c", Major: i(5), Minor: i(1), Access: "rwm"},    // console
		{Allow: true, Type: "c", Major: i(5), Minor: i(2), Access: "rwm"},    // ptmx
		{Allow: true, Type: "c", Major: i(136), Access: "rwm"},               // pts
		{Allow: true, Type: "c", Major: i(10), Minor: i(200), Access: "rwm"}, // tun
		{Allow: false, Type: "c", Major: i(10), Minor: i(229), Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "b", Access: "m"},
	}
}

// Build returns the spec for o.
func Build(o Options) (*specs.Spec, error) {
	if len(o.Args) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no command specified")
	}
	caps, err := Capabilities(o.Privileged, o.CapAdd, o.CapDrop, o.LastCap, o.Bounding)
	if err != nil {
		return nil, err
	}
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory '%s' is invalid, it needs to be an absolute path", cwd))
	}
	args := o.Args
	if o.InitPath != "" {
		args = append([]string{InitTarget, "--"}, args...)
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: o.Terminal,
			Args:     args,
			Env:      o.Env,
			Cwd:      path.Clean(cwd),
			User:     specs.User{UID: o.User.UID, GID: o.User.GID, AdditionalGids: o.User.AdditionalGids},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: false,
		},
		Root:       &specs.Root{Path: "rootfs", Readonly: o.ReadonlyRootfs},
		Hostname:   o.Hostname,
		Domainname: o.Domainname,
		Linux: &specs.Linux{
			CgroupsPath: o.CgroupsPath,
			Sysctl:      o.Sysctls,
			Resources:   &specs.LinuxResources{Devices: deviceRules(o.Privileged)},
		},
	}
	for _, d := range o.Devices {
		s.Linux.Devices = append(s.Linux.Devices, d.LinuxDevice)
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		major, minor := d.Major, d.Minor
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: perms,
		})
	}
	s.Process.Rlimits = o.Rlimits
	if o.OomScoreAdj != 0 {
		v := o.OomScoreAdj
		s.Process.OOMScoreAdj = &v
	}
	if o.User.UID == 0 {
		// root keeps its capabilities across exec, as in dockerd.
		s.Process.Capabilities.Inheritable = nil
	}
	// Namespaces.
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if !o.HostNetwork {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: o.NetNSPath})
	}
	if !o.HostUTS && !o.HostNetwork {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	} else {
		s.Hostname = ""
	}
	if !o.HostPID {
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if !o.HostIPC {
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if o.CgroupNS {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	s.Linux.Namespaces = ns

	// Paths.
	if o.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	} else {
		s.Linux.MaskedPaths = DefaultMaskedPaths
		if o.MaskedPaths != nil {
			s.Linux.MaskedPaths = o.MaskedPaths
		}
		s.Linux.ReadonlyPaths = DefaultReadonlyPaths
		if o.ReadonlyPaths != nil {
			s.Linux.ReadonlyPaths = o.ReadonlyPaths
		}
	}

	// Resources.
	r := s.Linux.Resources
	r.Memory, r.CPU = Limits{
		Memory: o.Memory, MemorySwap: o.MemorySwap,
		NanoCPUs: o.NanoCPUs, CPUShares: o.CPUShares, CPUQuota: o.CPUQuota, CPUPeriod: o.CPUPeriod, CpusetCpus: o.CpusetCpus,
	}.Resources()
	if o.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: o.PidsLimit}
	}

	// Mounts: defaults unless a user mount takes their place, then user mounts by depth.
	user := map[string]bool{}
	for _, m := range o.Mounts {
		user[path.Clean(m.Destination)] = true
	}
	for d := range o.Tmpfs {
		user[path.Clean(d)] = true
	}
	for _, m := range defaultMounts(o.ShmSize, o.Privileged) {
		if user[m.Destination] {
			continue
		}
		// With the host's IPC namespace dockerd binds the host's /dev/shm but mounts a new mqueue
		// filesystem, which shows that namespace's queues: the host need not have /dev/mqueue mounted.
		if o.HostIPC && m.Destination == "/dev/shm" {
			m = specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Destination, Options: []string{"rbind", "rprivate"}}
		}
		s.Mounts = append(s.Mounts, m)
	}
	var extra []specs.Mount
	for _, m := range o.Mounts {
		if !path.IsAbs(m.Destination) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid mount config: destination %q is not an absolute path", m.Destination))
		}
		extra = append(extra, specs.Mount{Destination: path.Clean(m.Destination), Type: m.Type, Source: m.Source, Options: m.Options})
	}
	for d, opts := range o.Tmpfs {
		mo := []string{"noexec", "nosuid", "nodev"}
		if opts != "" {
			mo = append(mo, strings.Split(opts, ",")...)
		}
		extra = append(extra, specs.Mount{Destination: path.Clean(d), Type: "tmpfs", Source: "tmpfs", Options: mo})
	}
	if o.InitPath != "" {
		extra = append(extra, specs.Mount{Destination: InitTarget, Type: "bind", Source: o.InitPath, Options: []string{"bind", "ro"}})
	}
	sort.SliceStable(extra, func(i, j int) bool { return mountDepth(extra[i].Destination) < mountDepth(extra[j].Destination) })
	s.Mounts = append(s.Mounts, extra...)
	if err := applySecurity(s, &o); err != nil {
		return nil, err
	}
	if err := applyExtra(s, o.Extra); err != nil {
		return nil, err
	}
	return s, nil
}
