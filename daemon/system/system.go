// Package system owns the daemon's answers to /version and /info: host facts read once at start (kernel,
// OS, CPUs, memory, runtime versions) and live figures asked from the services through the small Sources
// it declares. It must not import the services themselves.
package system

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berthd/api"
	"github.com/berthd/berthd/api/types/system"
	"golang.org/x/sys/unix"
)

// Build facts, set by the linker (-X) in the Makefile.
var (
	Version   = "0.1.0-dev"
	GitCommit = "unknown"
	BuildTime = ""
)

// Sources are the live figures /info shows. Any may be nil while the service behind it does not exist.
type Sources struct {
	// Containerd reports containerd's version and revision.
	Containerd func(ctx context.Context) (version, revision string, err error)
	// VolumeDrivers lists the volume drivers known so far (local first).
	VolumeDrivers func() []string
	// StorageDriver names the snapshotter and its status lines.
	StorageDriver func() (string, [][2]string)
	// Images counts images.
	Images func(ctx context.Context) int
	// Containers counts containers by state.
	Containers func() (total, running, paused, stopped int)
	// EventListeners counts /events subscribers.
	EventListeners func() int
}

// Config is the part of the daemon configuration /info reports.
type Config struct {
	ID            string
	Root          string
	Debug         func() bool
	LiveRestore   func() bool
	Labels        func() []string
	Experimental  bool
	CgroupVersion string
	Warnings      []string
	// SecurityOptions are the confinements every container gets ("name=seccomp,profile=builtin", ...).
	SecurityOptions []string
	// Admin is what the administrator's options put in force now (admin.go); nil reports defaults.
	Admin func() AdminInfo
}

// Service answers /version and /info.
type Service struct {
	cfg  Config
	src  Sources
	host hostFacts
	// commits runs `runc --version` and `tini --version` once, off the start-up path.
	commits func() (runc, init string)
}

type hostFacts struct {
	kernel, os, osVersion, arch string
	ncpu                        int
	mem                         int64
}

// New reads the host facts once; they do not change while the daemon runs.
func New(cfg Config, src Sources) *Service {
	s := &Service{cfg: cfg, src: src, host: readHost()}
	s.commits = sync.OnceValues(func() (string, string) {
		return commandCommit("runc", "--version", "commit:"), commandCommit("tini", "--version", "")
	})
	go s.commits()
	return s
}

func readHost() hostFacts {
	h := hostFacts{arch: unameMachine(), ncpu: runtime.NumCPU(), os: "Linux"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.kernel = unix.ByteSliceToString(u.Release[:])
	}
	if f, err := os.Open("/etc/os-release"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, _ := strings.Cut(s.Text(), "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "PRETTY_NAME":
				h.os = v
			case "VERSION_ID":
				h.osVersion = v
			}
		}
		f.Close()
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.mem = int64(si.Totalram) * int64(si.Unit)
	}
	return h
}

func unameMachine() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// commandCommit runs a version command with a short deadline and picks the commit out of its output.
func commandCommit(name string, arg, prefix string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, arg).Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if prefix != "" && strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
		if prefix == "" && line != "" {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	return ""
}

// Version is the body of GET /version.
func (s *Service) Version(ctx context.Context) system.Version {
	v := system.Version{
		Platform:      system.PlatformInfo{Name: "berthd"},
		Version:       Version,
		APIVersion:    api.DefaultVersion,
		MinAPIVersion: api.MinSupportedVersion,
		GitCommit:     GitCommit,
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: s.host.kernel,
		Experimental:  s.cfg.Experimental,
		BuildTime:     BuildTime,
	}
	v.Components = []system.ComponentVersion{{
		Name: "Engine", Version: Version,
		Details: map[string]string{
			"ApiVersion": api.DefaultVersion, "MinAPIVersion": api.MinSupportedVersion, "GitCommit": GitCommit,
			"GoVersion": runtime.Version(), "Os": runtime.GOOS, "Arch": runtime.GOARCH,
			"KernelVersion": s.host.kernel, "BuildTime": BuildTime, "Experimental": strconv.FormatBool(s.cfg.Experimental),
		},
	}}
	if s.src.Containerd != nil {
		if ver, rev, err := s.src.Containerd(ctx); err == nil {
			v.Components = append(v.Components, system.ComponentVersion{Name: "containerd", Version: ver, Details: map[string]string{"GitCommit": rev}})
		}
	}
	if runcCommit, _ := s.commits(); runcCommit != "" {
		v.Components = append(v.Components, system.ComponentVersion{Name: "runc", Version: runcVersion(), Details: map[string]string{"GitCommit": runcCommit}})
	}
	return v
}

var runcVersion = sync.OnceValue(func() string {
	out, err := exec.Command("runc", "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0])
	if len(f) >= 3 {
		return f[2]
	}
	return ""
})

// Info is the body of GET /info.
func (s *Service) Info(ctx context.Context) system.Info {
	hostname, _ := os.Hostname()
	runcCommit, initCommit := s.commits()
	info := system.Info{
		ID:                 s.cfg.ID,
		Name:               hostname,
		Driver:             "",
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"host", "null"}, Log: []string{"json-file"}},
		MemoryLimit:        true,
		SwapLimit:          swapLimitSupported("/sys/fs/cgroup"),
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		NGoroutines:        runtime.NumGoroutine(),
		NFd:                countFDs(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      s.cfg.CgroupVersion,
		KernelVersion:      s.host.kernel,
		OperatingSystem:    s.host.os,
		OSVersion:          s.host.osVersion,
		OSType:             "linux",
		Architecture:       s.host.arch,
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     &system.RegistryConfig{InsecureRegistryCIDRs: []string{"127.0.0.0/8", "::1/128"}, IndexConfigs: map[string]any{}, Mirrors: []string{}},
		NCPU:               s.host.ncpu,
		MemTotal:           s.host.mem,
		DockerRootDir:      s.cfg.Root,
		HTTPProxy:          os.Getenv("HTTP_PROXY"),
		HTTPSProxy:         os.Getenv("HTTPS_PROXY"),
		NoProxy:            os.Getenv("NO_PROXY"),
		ServerVersion:      Version,
		Runtimes:           map[string]system.Runtime{"runc": {Path: "runc"}, "io.containerd.runc.v2": {Path: "runc"}},
		DefaultRuntime:     "runc",
		Swarm:              system.SwarmInfo{LocalNodeState: "inactive"},
		ExperimentalBuild:  s.cfg.Experimental,
		InitBinary:         "docker-init",
		RuncCommit:         system.Commit{ID: runcCommit},
		InitCommit:         system.Commit{ID: initCommit},
		SecurityOptions:    append([]string{}, s.cfg.SecurityOptions...),
		Isolation:          "",
		Warnings:           append([]string(nil), s.cfg.Warnings...),
	}
	if !info.SwapLimit {
		info.Warnings = append(info.Warnings, "WARNING: No swap limit support")
	}
	if s.cfg.Admin != nil {
		s.cfg.Admin().apply(&info)
	}
	if s.cfg.Debug != nil {
		info.Debug = s.cfg.Debug()
	}
	if s.cfg.LiveRestore != nil {
		info.LiveRestoreEnabled = s.cfg.LiveRestore()
	}
	if s.cfg.Labels != nil {
		info.Labels = s.cfg.Labels()
	}
	if info.Labels == nil {
		info.Labels = []string{}
	}
	if s.src.Containerd != nil {
		if _, rev, err := s.src.Containerd(ctx); err == nil {
			info.ContainerdCommit.ID = rev
		} else {
			info.Warnings = append(info.Warnings, "WARNING: containerd is not reachable: "+err.Error())
		}
	}
	if s.src.VolumeDrivers != nil {
		info.Plugins.Volume = s.src.VolumeDrivers()
	}
	if s.src.StorageDriver != nil {
		info.Driver, info.DriverStatus = s.src.StorageDriver()
	}
	if info.DriverStatus == nil {
		info.DriverStatus = [][2]string{}
	}
	if s.src.Images != nil {
		info.Images = s.src.Images(ctx)
	}
	if s.src.Containers != nil {
		info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped = s.src.Containers()
	}
	if s.src.EventListeners != nil {
		info.NEventsListener = s.src.EventListeners()
	}
	return info
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
