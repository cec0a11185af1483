// Package container owns the wire form of the Engine API's container and exec endpoints (create, inspect,
// list, wait, exec, top, changes, prune), field names and JSON shapes as dockerd sends and reads them.
// Standard library only.
package container

// HealthConfig is a container's or image's healthcheck (kept and echoed; berthd does not run checks yet).
type HealthConfig struct {
	Test          []string `json:",omitempty"`
	Interval      int64    `json:",omitempty"`
	Timeout       int64    `json:",omitempty"`
	StartPeriod   int64    `json:",omitempty"`
	StartInterval int64    `json:",omitempty"`
	Retries       int      `json:",omitempty"`
}

// Config is the portable part of a container's configuration (POST /containers/create body, inspect).
type Config struct {
	Hostname        string              `json:"Hostname"`
	Domainname      string              `json:"Domainname"`
	User            string              `json:"User"`
	AttachStdin     bool                `json:"AttachStdin"`
	AttachStdout    bool                `json:"AttachStdout"`
	AttachStderr    bool                `json:"AttachStderr"`
	ExposedPorts    map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty             bool                `json:"Tty"`
	OpenStdin       bool                `json:"OpenStdin"`
	StdinOnce       bool                `json:"StdinOnce"`
	Env             []string            `json:"Env"`
	Cmd             []string            `json:"Cmd"`
	Healthcheck     *HealthConfig       `json:"Healthcheck,omitempty"`
	ArgsEscaped     bool                `json:"ArgsEscaped,omitempty"`
	Image           string              `json:"Image"`
	Volumes         map[string]struct{} `json:"Volumes"`
	WorkingDir      string              `json:"WorkingDir"`
	Entrypoint      []string            `json:"Entrypoint"`
	NetworkDisabled bool                `json:"NetworkDisabled,omitempty"`
	MacAddress      string              `json:"MacAddress,omitempty"`
	OnBuild         []string            `json:"OnBuild"`
	Labels          map[string]string   `json:"Labels"`
	StopSignal      string              `json:"StopSignal,omitempty"`
	StopTimeout     *int                `json:"StopTimeout,omitempty"`
	Shell           []string            `json:"Shell,omitempty"`
}

// LogConfig selects the log driver.
type LogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
}

// RestartPolicy is --restart.
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// Restart policy names.
const (
	RestartPolicyDisabled      = "no"
	RestartPolicyAlways        = "always"
	RestartPolicyOnFailure     = "on-failure"
	RestartPolicyUnlessStopped = "unless-stopped"
)

// PortBinding is one host side of a published port.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// DeviceMapping is --device.
type DeviceMapping struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// Ulimit is --ulimit.
type Ulimit struct {
	Name string `json:"Name"`
	Hard int64  `json:"Hard"`
	Soft int64  `json:"Soft"`
}

// Resources are the cgroup settings of HostConfig (also POST /containers/{id}/update).
type Resources struct {
	CPUShares          int64           `json:"CpuShares"`
	Memory             int64           `json:"Memory"`
	NanoCPUs           int64           `json:"NanoCpus"`
	CgroupParent       string          `json:"CgroupParent"`
	BlkioWeight        uint16          `json:"BlkioWeight"`
	CPUPeriod          int64           `json:"CpuPeriod"`
	CPUQuota           int64           `json:"CpuQuota"`
	CPURealtimePeriod  int64           `json:"CpuRealtimePeriod"`
	CPURealtimeRuntime int64           `json:"CpuRealtimeRuntime"`
	CpusetCpus         string          `json:"CpusetCpus"`
	CpusetMems         string          `json:"CpusetMems"`
	Devices            []DeviceMapping `json:"Devices"`
	DeviceCgroupRules  []string        `json:"DeviceCgroupRules"`
	KernelMemory       int64           `json:"KernelMemory,omitempty"`
	KernelMemoryTCP    int64           `json:"KernelMemoryTCP,omitempty"`
	MemoryReservation  int64           `json:"MemoryReservation"`
	MemorySwap         int64           `json:"MemorySwap"`
	MemorySwappiness   *int64          `json:"MemorySwappiness"`
	OomKillDisable     *bool           `json:"OomKillDisable"`
	PidsLimit          *int64          `json:"PidsLimit"`
	Ulimits            []*Ulimit       `json:"Ulimits"`
	CPUCount           int64           `json:"CpuCount"`
	CPUPercent         int64           `json:"CpuPercent"`
	IOMaximumIOps      uint64          `json:"IOMaximumIOps"`
	IOMaximumBandwidth uint64          `json:"IOMaximumBandwidth"`

	BlkioWeightDevice    []*WeightDevice   `json:"BlkioWeightDevice"`
	BlkioDeviceReadBps   []*ThrottleDevice `json:"BlkioDeviceReadBps"`
	BlkioDeviceWriteBps  []*ThrottleDevice `json:"BlkioDeviceWriteBps"`
	BlkioDeviceReadIOps  []*ThrottleDevice `json:"BlkioDeviceReadIOps"`
	BlkioDeviceWriteIOps []*ThrottleDevice `json:"BlkioDeviceWriteIOps"`
	DeviceRequests       []DeviceRequest   `json:"DeviceRequests"`
}

// WeightDevice is one --blkio-weight-device entry.
type WeightDevice struct {
	Path   string `json:"Path"`
	Weight uint16 `json:"Weight"`
}

// ThrottleDevice is one --device-read-bps (and friends) entry.
type ThrottleDevice struct {
	Path string `json:"Path"`
	Rate uint64 `json:"Rate"`
}

// DeviceRequest is one --gpus (or CDI) device request.
type DeviceRequest struct {
	Driver       string            `json:"Driver"`
	Count        int               `json:"Count"`
	DeviceIDs    []string          `json:"DeviceIDs"`
	Capabilities [][]string        `json:"Capabilities"`
	Options      map[string]string `json:"Options"`
}

// HostConfig is the non-portable part of a container's configuration.
type HostConfig struct {
	Binds           []string                 `json:"Binds"`
	ContainerIDFile string                   `json:"ContainerIDFile"`
	LogConfig       LogConfig                `json:"LogConfig"`
	NetworkMode     string                   `json:"NetworkMode"`
	PortBindings    map[string][]PortBinding `json:"PortBindings"`
	RestartPolicy   RestartPolicy            `json:"RestartPolicy"`
	AutoRemove      bool                     `json:"AutoRemove"`
	VolumeDriver    string                   `json:"VolumeDriver"`
	VolumesFrom     []string                 `json:"VolumesFrom"`
	ConsoleSize     [2]uint                  `json:"ConsoleSize"`
	Annotations     map[string]string        `json:"Annotations,omitempty"`
	CapAdd          []string                 `json:"CapAdd"`
	CapDrop         []string                 `json:"CapDrop"`
	CgroupnsMode    string                   `json:"CgroupnsMode"`
	DNS             []string                 `json:"Dns"`
	DNSOptions      []string                 `json:"DnsOptions"`
	DNSSearch       []string                 `json:"DnsSearch"`
	ExtraHosts      []string                 `json:"ExtraHosts"`
	GroupAdd        []string                 `json:"GroupAdd"`
	IpcMode         string                   `json:"IpcMode"`
	Cgroup          string                   `json:"Cgroup"`
	Links           []string                 `json:"Links"`
	OomScoreAdj     int                      `json:"OomScoreAdj"`
	PidMode         string                   `json:"PidMode"`
	Privileged      bool                     `json:"Privileged"`
	PublishAllPorts bool                     `json:"PublishAllPorts"`
	ReadonlyRootfs  bool                     `json:"ReadonlyRootfs"`
	SecurityOpt     []string                 `json:"SecurityOpt"`
	StorageOpt      map[string]string        `json:"StorageOpt,omitempty"`
	Tmpfs           map[string]string        `json:"Tmpfs,omitempty"`
	UTSMode         string                   `json:"UTSMode"`
	UsernsMode      string                   `json:"UsernsMode"`
	ShmSize         int64                    `json:"ShmSize"`
	Sysctls         map[string]string        `json:"Sysctls,omitempty"`
	Runtime         string                   `json:"Runtime,omitempty"`
	Isolation       string                   `json:"Isolation"`
	Resources
	Mounts        []Mount  `json:"Mounts,omitempty"`
	MaskedPaths   []string `json:"MaskedPaths"`
	ReadonlyPaths []string `json:"ReadonlyPaths"`
	Init          *bool    `json:"Init,omitempty"`
}

// Mount types of HostConfig.Mounts.
const (
	MountTypeBind   = "bind"
	MountTypeVolume = "volume"
	MountTypeTmpfs  = "tmpfs"
)

// Mount is one --mount.
type Mount struct {
	Type          string         `json:"Type,omitempty"`
	Source        string         `json:"Source,omitempty"`
	Target        string         `json:"Target,omitempty"`
	ReadOnly      bool           `json:"ReadOnly,omitempty"`
	Consistency   string         `json:"Consistency,omitempty"`
	BindOptions   *BindOptions   `json:"BindOptions,omitempty"`
	VolumeOptions *VolumeOptions `json:"VolumeOptions,omitempty"`
	TmpfsOptions  *TmpfsOptions  `json:"TmpfsOptions,omitempty"`
}

// BindOptions are the bind-specific --mount options.
type BindOptions struct {
	Propagation      string `json:"Propagation,omitempty"`
	NonRecursive     bool   `json:"NonRecursive,omitempty"`
	CreateMountpoint bool   `json:"CreateMountpoint,omitempty"`
	// ReadOnlyNonRecursive and ReadOnlyForceRecursive are API 1.44's read-only recursion controls.
	ReadOnlyNonRecursive   bool `json:"ReadOnlyNonRecursive,omitempty"`
	ReadOnlyForceRecursive bool `json:"ReadOnlyForceRecursive,omitempty"`
}

// Driver is a volume driver and its options.
type Driver struct {
	Name    string            `json:"Name,omitempty"`
	Options map[string]string `json:"Options,omitempty"`
}

// VolumeOptions are the volume-specific --mount options.
type VolumeOptions struct {
	NoCopy       bool              `json:"NoCopy,omitempty"`
	Labels       map[string]string `json:"Labels,omitempty"`
	Subpath      string            `json:"Subpath,omitempty"`
	DriverConfig *Driver           `json:"DriverConfig,omitempty"`
}

// TmpfsOptions are the tmpfs-specific --mount options.
type TmpfsOptions struct {
	SizeBytes int64  `json:"SizeBytes,omitempty"`
	Mode      uint32 `json:"Mode,omitempty"`
}

// CreateRequest is the body of POST /containers/create.
type CreateRequest struct {
	Config
	HostConfig       *HostConfig       `json:"HostConfig,omitempty"`
	NetworkingConfig *NetworkingConfig `json:"NetworkingConfig,omitempty"`
	// Platform is the create request's `platform` query parameter ("os[/arch[/variant]]"), not part of the
	// body.
	Platform string `json:"-"`
}

// NetworkingConfig is the create request's per-network endpoint configuration.
type NetworkingConfig struct {
	EndpointsConfig map[string]*EndpointSettings `json:"EndpointsConfig"`
}

// EndpointSettings is one network of a container.
type EndpointSettings struct {
	IPAMConfig          *EndpointIPAMConfig `json:"IPAMConfig"`
	Links               []string            `json:"Links"`
	Aliases             []string            `json:"Aliases"`
	MacAddress          string              `json:"MacAddress"`
	DriverOpts          map[string]string   `json:"DriverOpts"`
	GwPriority          int                 `json:"GwPriority"`
	NetworkID           string              `json:"NetworkID"`
	EndpointID          string              `json:"EndpointID"`
	Gateway             string              `json:"Gateway"`
	IPAddress           string              `json:"IPAddress"`
	IPPrefixLen         int                 `json:"IPPrefixLen"`
	IPv6Gateway         string              `json:"IPv6Gateway"`
	GlobalIPv6Address   string              `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int                 `json:"GlobalIPv6PrefixLen"`
	DNSNames            []string            `json:"DNSNames"`
}

// EndpointIPAMConfig is a container's requested addresses on one network (--ip, --ip6).
type EndpointIPAMConfig struct {
	IPv4Address  string   `json:"IPv4Address,omitempty"`
	IPv6Address  string   `json:"IPv6Address,omitempty"`
	LinkLocalIPs []string `json:"LinkLocalIPs,omitempty"`
}

// CreateResponse is the answer of POST /containers/create.
type CreateResponse struct {
	ID       string   `json:"Id"`
	Warnings []string `json:"Warnings"`
}
