package container

// State is the State object of GET /containers/{id}/json.
type State struct {
	Status     string  `json:"Status"`
	Running    bool    `json:"Running"`
	Paused     bool    `json:"Paused"`
	Restarting bool    `json:"Restarting"`
	OOMKilled  bool    `json:"OOMKilled"`
	Dead       bool    `json:"Dead"`
	Pid        int     `json:"Pid"`
	ExitCode   int     `json:"ExitCode"`
	Error      string  `json:"Error"`
	StartedAt  string  `json:"StartedAt"`
	FinishedAt string  `json:"FinishedAt"`
	Health     *Health `json:"Health,omitempty"`
}

// MountPoint is one mount as inspect and list show it.
type MountPoint struct {
	Type        string `json:"Type,omitempty"`
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

// GraphDriverData is the storage section of inspect.
type GraphDriverData struct {
	Data map[string]string `json:"Data"`
	Name string            `json:"Name"`
}

// NetworkSettings is the network section of inspect.
type NetworkSettings struct {
	Bridge                 string                       `json:"Bridge"`
	SandboxID              string                       `json:"SandboxID"`
	SandboxKey             string                       `json:"SandboxKey"`
	Ports                  map[string][]PortBinding     `json:"Ports"`
	HairpinMode            bool                         `json:"HairpinMode"`
	LinkLocalIPv6Address   string                       `json:"LinkLocalIPv6Address"`
	LinkLocalIPv6PrefixLen int                          `json:"LinkLocalIPv6PrefixLen"`
	SecondaryIPAddresses   any                          `json:"SecondaryIPAddresses"`
	SecondaryIPv6Addresses any                          `json:"SecondaryIPv6Addresses"`
	EndpointID             string                       `json:"EndpointID"`
	Gateway                string                       `json:"Gateway"`
	GlobalIPv6Address      string                       `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen    int                          `json:"GlobalIPv6PrefixLen"`
	IPAddress              string                       `json:"IPAddress"`
	IPPrefixLen            int                          `json:"IPPrefixLen"`
	IPv6Gateway            string                       `json:"IPv6Gateway"`
	MacAddress             string                       `json:"MacAddress"`
	Networks               map[string]*EndpointSettings `json:"Networks"`
}

// InspectResponse is GET /containers/{id}/json.
type InspectResponse struct {
	ID              string           `json:"Id"`
	Created         string           `json:"Created"`
	Path            string           `json:"Path"`
	Args            []string         `json:"Args"`
	State           *State           `json:"State"`
	Image           string           `json:"Image"`
	ResolvConfPath  string           `json:"ResolvConfPath"`
	HostnamePath    string           `json:"HostnamePath"`
	HostsPath       string           `json:"HostsPath"`
	LogPath         string           `json:"LogPath"`
	Name            string           `json:"Name"`
	RestartCount    int              `json:"RestartCount"`
	Driver          string           `json:"Driver"`
	Platform        string           `json:"Platform"`
	MountLabel      string           `json:"MountLabel"`
	ProcessLabel    string           `json:"ProcessLabel"`
	AppArmorProfile string           `json:"AppArmorProfile"`
	ExecIDs         []string         `json:"ExecIDs"`
	HostConfig      *HostConfig      `json:"HostConfig"`
	GraphDriver     GraphDriverData  `json:"GraphDriver"`
	SizeRw          *int64           `json:"SizeRw,omitempty"`
	SizeRootFs      *int64           `json:"SizeRootFs,omitempty"`
	Mounts          []MountPoint     `json:"Mounts"`
	Config          *Config          `json:"Config"`
	NetworkSettings *NetworkSettings `json:"NetworkSettings"`
}

// Port is a published port in a list row.
type Port struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16 `json:"PrivatePort"`
	PublicPort  uint16 `json:"PublicPort,omitempty"`
	Type        string `json:"Type"`
}

// SummaryHostConfig is the HostConfig part of a list row.
type SummaryHostConfig struct {
	NetworkMode string            `json:"NetworkMode,omitempty"`
	Annotations map[string]string `json:"Annotations,omitempty"`
}

// SummaryNetworkSettings is the network part of a list row.
type SummaryNetworkSettings struct {
	Networks map[string]*EndpointSettings `json:"Networks"`
}

// Summary is one row of GET /containers/json.
type Summary struct {
	ID              string                  `json:"Id"`
	Names           []string                `json:"Names"`
	Image           string                  `json:"Image"`
	ImageID         string                  `json:"ImageID"`
	Command         string                  `json:"Command"`
	Created         int64                   `json:"Created"`
	Ports           []Port                  `json:"Ports"`
	SizeRw          int64                   `json:"SizeRw,omitempty"`
	SizeRootFs      int64                   `json:"SizeRootFs,omitempty"`
	Labels          map[string]string       `json:"Labels"`
	State           string                  `json:"State"`
	Status          string                  `json:"Status"`
	HostConfig      SummaryHostConfig       `json:"HostConfig"`
	NetworkSettings *SummaryNetworkSettings `json:"NetworkSettings"`
	Mounts          []MountPoint            `json:"Mounts"`
}

// ListOptions are the query of GET /containers/json, decoded by the router.
type ListOptions struct {
	All    bool
	Limit  int
	Size   bool
	Latest bool
	Since  string
	Before string
	// Filters is the raw filters JSON (decoded by the service with api/types/filters).
	Filters string
}

// WaitExitError is the error of a wait answer.
type WaitExitError struct {
	Message string `json:"Message"`
}

// WaitResponse is the body of POST /containers/{id}/wait.
type WaitResponse struct {
	StatusCode int64          `json:"StatusCode"`
	Error      *WaitExitError `json:"Error"`
}

// Wait conditions.
const (
	WaitConditionNotRunning = "not-running"
	WaitConditionNextExit   = "next-exit"
	WaitConditionRemoved    = "removed"
)

// ExecOptions is the body of POST /containers/{id}/exec.
type ExecOptions struct {
	User         string   `json:"User"`
	Privileged   bool     `json:"Privileged"`
	Tty          bool     `json:"Tty"`
	ConsoleSize  *[2]uint `json:"ConsoleSize,omitempty"`
	AttachStdin  bool     `json:"AttachStdin"`
	AttachStderr bool     `json:"AttachStderr"`
	AttachStdout bool     `json:"AttachStdout"`
	Detach       bool     `json:"Detach"`
	DetachKeys   string   `json:"DetachKeys"`
	Env          []string `json:"Env"`
	WorkingDir   string   `json:"WorkingDir"`
	Cmd          []string `json:"Cmd"`
}

// ExecStartOptions is the body of POST /exec/{id}/start.
type ExecStartOptions struct {
	Detach      bool     `json:"Detach"`
	Tty         bool     `json:"Tty"`
	ConsoleSize *[2]uint `json:"ConsoleSize,omitempty"`
}

// IDResponse is {"Id": ...}.
type IDResponse struct {
	ID string `json:"Id"`
}

// ExecProcessConfig is the process part of an exec inspect.
type ExecProcessConfig struct {
	Tty        bool     `json:"tty"`
	Entrypoint string   `json:"entrypoint"`
	Arguments  []string `json:"arguments"`
	Privileged *bool    `json:"privileged,omitempty"`
	User       string   `json:"user,omitempty"`
}

// ExecInspect is GET /exec/{id}/json.
type ExecInspect struct {
	ID            string            `json:"ID"`
	Running       bool              `json:"Running"`
	ExitCode      *int              `json:"ExitCode"`
	ProcessConfig ExecProcessConfig `json:"ProcessConfig"`
	OpenStdin     bool              `json:"OpenStdin"`
	OpenStderr    bool              `json:"OpenStderr"`
	OpenStdout    bool              `json:"OpenStdout"`
	CanRemove     bool              `json:"CanRemove"`
	ContainerID   string            `json:"ContainerID"`
	DetachKeys    string            `json:"DetachKeys"`
	Pid           int               `json:"Pid"`
}

// TopResponse is GET /containers/{id}/top.
type TopResponse struct {
	Titles    []string   `json:"Titles"`
	Processes [][]string `json:"Processes"`
}

// FilesystemChange is one row of GET /containers/{id}/changes; Kind 0 modified, 1 added, 2 deleted.
type FilesystemChange struct {
	Path string `json:"Path"`
	Kind int    `json:"Kind"`
}

// PruneReport is POST /containers/prune.
type PruneReport struct {
	ContainersDeleted []string `json:"ContainersDeleted"`
	SpaceReclaimed    uint64   `json:"SpaceReclaimed"`
}

// LogsOptions are the query of GET /containers/{id}/logs.
type LogsOptions struct {
	ShowStdout bool
	ShowStderr bool
	Since      string
	Until      string
	Timestamps bool
	Follow     bool
	Tail       string
	Details    bool
}

// AttachOptions are the query of POST /containers/{id}/attach.
type AttachOptions struct {
	Stream     bool
	Stdin      bool
	Stdout     bool
	Stderr     bool
	Logs       bool
	DetachKeys string
}

// HealthcheckResult is one probe of a healthcheck.
type HealthcheckResult struct {
	Start    string `json:"Start"`
	End      string `json:"End"`
	ExitCode int    `json:"ExitCode"`
	Output   string `json:"Output"`
}

// Health is State.Health: the healthcheck's status, failing streak and last probes.
type Health struct {
	Status        string               `json:"Status"`
	FailingStreak int                  `json:"FailingStreak"`
	Log           []*HealthcheckResult `json:"Log"`
}
