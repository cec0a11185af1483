// Package system owns the wire form of /version, /info and /system/df. Standard library only.
package system

// ComponentVersion is one entry of Version.Components.
type ComponentVersion struct {
	Name    string
	Version string
	Details map[string]string `json:",omitempty"`
}

// PlatformInfo names the product behind the engine.
type PlatformInfo struct{ Name string }

// Version is the body of GET /version.
type Version struct {
	Platform      PlatformInfo
	Components    []ComponentVersion `json:",omitempty"`
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion,omitempty"`
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string `json:",omitempty"`
	Experimental  bool   `json:",omitempty"`
	BuildTime     string `json:",omitempty"`
}

// PluginsInfo lists the plugins by kind, as /info reports them.
type PluginsInfo struct {
	Volume        []string
	Network       []string
	Authorization []string
	Log           []string
}

// Commit is a component's commit as /info reports it.
type Commit struct {
	ID string
}

// SwarmInfo is always inactive: berthd has no swarm mode, and the CLI prints manager details otherwise.
type SwarmInfo struct {
	NodeID           string
	NodeAddr         string
	LocalNodeState   string
	ControlAvailable bool
	Error            string
}

// Runtime is one entry of Info.Runtimes.
type Runtime struct {
	Path string   `json:"path,omitempty"`
	Args []string `json:"runtimeArgs,omitempty"`
}

// Info is the body of GET /info; the fields are those the docker CLI reads.
type Info struct {
	ID                 string
	Containers         int
	ContainersRunning  int
	ContainersPaused   int
	ContainersStopped  int
	Images             int
	Driver             string
	DriverStatus       [][2]string
	SystemStatus       [][2]string `json:",omitempty"`
	Plugins            PluginsInfo
	MemoryLimit        bool
	SwapLimit          bool
	CPUCfsPeriod       bool `json:"CpuCfsPeriod"`
	CPUCfsQuota        bool `json:"CpuCfsQuota"`
	CPUShares          bool
	CPUSet             bool
	PidsLimit          bool
	IPv4Forwarding     bool
	Debug              bool
	NFd                int
	OomKillDisable     bool
	NGoroutines        int
	SystemTime         string
	LoggingDriver      string
	CgroupDriver       string
	CgroupVersion      string `json:",omitempty"`
	NEventsListener    int
	KernelVersion      string
	OperatingSystem    string
	OSVersion          string
	OSType             string
	Architecture       string
	IndexServerAddress string
	RegistryConfig     *RegistryConfig
	NCPU               int
	MemTotal           int64
	DockerRootDir      string
	HTTPProxy          string `json:"HttpProxy"`
	HTTPSProxy         string `json:"HttpsProxy"`
	NoProxy            string
	Name               string
	Labels             []string
	ExperimentalBuild  bool
	ServerVersion      string
	Runtimes           map[string]Runtime
	DefaultRuntime     string
	Swarm              SwarmInfo
	LiveRestoreEnabled bool
	Isolation          string
	InitBinary         string
	ContainerdCommit   Commit
	RuncCommit         Commit
	InitCommit         Commit
	SecurityOptions    []string
	CDISpecDirs        []string
	Warnings           []string
}

// RegistryConfig is the registry part of Info; berthd reports loopback as insecure, as dockerd does.
type RegistryConfig struct {
	InsecureRegistryCIDRs []string
	IndexConfigs          map[string]any
	Mirrors               []string
}

// DiskUsage is the body of GET /system/df. Element types are owned by their areas; they are raw JSON-able
// values here so this package stays independent of them.
type DiskUsage struct {
	LayersSize int64
	Images     []any
	Containers []any
	Volumes    []any
	BuildCache []any
	// BuilderSize is the build cache's total, reported for API < 1.42 only.
	BuilderSize int64 `json:",omitempty"`
}

// DiskUsageOptions selects which object kinds /system/df computes.
type DiskUsageOptions struct {
	Containers, Images, Volumes, BuildCache bool
}
