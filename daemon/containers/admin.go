package containers

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/logger"
	"github.com/berthd/berthd/daemon/containers/logger/jsonfile"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Defaults are the administrator's defaults for new containers (daemon.json / dockerd flags).
type Defaults struct {
	// LogDriver and LogOpts are log-driver and log-opts; json-file when empty.
	LogDriver string
	LogOpts   map[string]string
	// ShmSize is default-shm-size in bytes (64 MiB when zero).
	ShmSize int64
	// CgroupnsMode is default-cgroupns-mode ("host" when empty).
	CgroupnsMode string
	// Init runs every container without an explicit --init setting with the init binary.
	Init bool
	// Ulimits are default-ulimits; a container's own --ulimit of the same name wins.
	Ulimits map[string]*ctypes.Ulimit
	// SystemdCgroup puts containers in systemd scopes (exec-opts native.cgroupdriver=systemd): the
	// cgroups path is "<slice>:berth:<id>" and runc manages the cgroup through systemd.
	SystemdCgroup bool
	// RuntimeBinary is the OCI runtime of default-runtime ("runc" from PATH when empty).
	RuntimeBinary string
}

// applyDefaults fills what the request left unset, as dockerd does at create (so inspect shows it).
func (d Defaults) apply(hc *ctypes.HostConfig) {
	def := d.LogDriver
	if def == "" {
		def = logger.JSONFile
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = def
	}
	// The daemon's options apply only to containers of the daemon's driver, and never override the
	// container's own.
	if hc.LogConfig.Type == def && len(d.LogOpts) > 0 {
		if hc.LogConfig.Config == nil {
			hc.LogConfig.Config = map[string]string{}
		}
		for k, v := range d.LogOpts {
			if _, ok := hc.LogConfig.Config[k]; !ok {
				hc.LogConfig.Config[k] = v
			}
		}
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = d.ShmSize
		if hc.ShmSize == 0 {
			hc.ShmSize = 64 << 20
		}
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = d.CgroupnsMode
	}
}

// logFile is where the container's log driver keeps its output.
func (c *Container) logFile() string {
	return logger.Path(c.HostConfig.LogConfig.Type, c.dir, c.ID)
}

// openLog opens the container's log writer; nil for the none driver.
func openLog(c *Container) (*jsonfile.Writer, error) {
	lc := c.HostConfig.LogConfig
	if lc.Type == logger.None {
		return nil, nil
	}
	info := logger.Info{ID: c.ID, Name: c.Name, ImageID: c.ImageID}
	if c.Config != nil {
		info.Labels, info.Env, info.ImageName = c.Config.Labels, c.Config.Env, c.Config.Image
	}
	opts, err := logger.Options(lc.Type, lc.Config, info)
	if err != nil {
		return nil, invalidf("failed to initialize logging driver: %s", err.Error())
	}
	path := c.logFile()
	if err := mkdirFor(path); err != nil {
		return nil, err
	}
	return jsonfile.Open(path, opts)
}

func mkdirFor(path string) error {
	return os.MkdirAll(filepath.Dir(path), 0o700)
}

// rlimitsWithDefaults are the daemon's default ulimits overridden by the container's own.
func (d Defaults) rlimits(hc *ctypes.HostConfig) []specs.POSIXRlimit {
	own := rlimitsFor(hc)
	seen := map[string]bool{}
	for _, r := range own {
		seen[r.Type] = true
	}
	var out []specs.POSIXRlimit
	for _, u := range d.Ulimits {
		t := "RLIMIT_" + strings.ToUpper(u.Name)
		if !seen[t] {
			out = append(out, specs.POSIXRlimit{Type: t, Hard: uint64(u.Hard), Soft: uint64(u.Soft)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return append(own, out...)
}

// cgroupsPath is the OCI cgroupsPath of a container: a path under the cgroup parent with cgroupfs,
// "<slice>:berth:<id>" with the systemd driver (runc then creates berth-<id>.scope in the slice).
func (c Config) cgroupsPath(hc *ctypes.HostConfig, id string) string {
	return CgroupsPath(c.Defaults.SystemdCgroup, hc.CgroupParent, c.CgroupParent, id)
}

// CgroupsPath computes a container's cgroupsPath; parent is the container's --cgroup-parent, def the
// daemon's.
func CgroupsPath(systemd bool, parent, def, id string) string {
	if parent == "" {
		parent = def
	}
	if !systemd {
		return filepath.Join(parent, id)
	}
	if parent == "" || strings.HasPrefix(parent, "/") {
		parent = "system.slice"
	}
	return parent + ":berth:" + id
}

// runtimeOptions are the runc shim options of every container: the runtime binary and cgroup driver.
func (d Defaults) runtimeOptions() *ltypes.RuntimeOptions {
	if !d.SystemdCgroup && d.RuntimeBinary == "" {
		return nil
	}
	return &ltypes.RuntimeOptions{BinaryName: d.RuntimeBinary, SystemdCgroup: d.SystemdCgroup}
}

// cgroupDir is the container's cgroup directory relative to a controller's mount point (or the cgroup v2
// root), where stats read it.
func (c Config) cgroupDir(hc *ctypes.HostConfig, id string) string {
	return CgroupDir(c.Defaults.SystemdCgroup, hc.CgroupParent, c.CgroupParent, id)
}

// CgroupDir is the directory runc creates for cgroupsPath (see CgroupsPath): with systemd, the scope
// "berth-<id>.scope" inside the slice, whose name systemd expands ("a-b.slice" is a.slice/a-b.slice).
func CgroupDir(systemd bool, parent, def, id string) string {
	p := CgroupsPath(systemd, parent, def, id)
	if !systemd {
		return p
	}
	slice, _, _ := strings.Cut(p, ":")
	return filepath.Join("/", expandSlice(slice), "berth-"+id+".scope")
}

func expandSlice(slice string) string {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "-" || name == "" {
		return ""
	}
	var parts []string
	prefix := ""
	for _, comp := range strings.Split(name, "-") {
		prefix += comp
		parts = append(parts, prefix+".slice")
		prefix += "-"
	}
	return filepath.Join(parts...)
}
