package container

// CPUUsage is the CPU part of a stats sample (nanoseconds).
type CPUUsage struct {
	TotalUsage        uint64   `json:"total_usage"`
	PercpuUsage       []uint64 `json:"percpu_usage,omitempty"`
	UsageInKernelmode uint64   `json:"usage_in_kernelmode"`
	UsageInUsermode   uint64   `json:"usage_in_usermode"`
}

// ThrottlingData is CFS throttling.
type ThrottlingData struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_time"`
}

// CPUStats is one CPU sample.
type CPUStats struct {
	CPUUsage       CPUUsage       `json:"cpu_usage"`
	SystemUsage    uint64         `json:"system_cpu_usage,omitempty"`
	OnlineCPUs     uint32         `json:"online_cpus,omitempty"`
	ThrottlingData ThrottlingData `json:"throttling_data,omitempty"`
}

// MemoryStats is one memory sample.
type MemoryStats struct {
	Usage    uint64            `json:"usage,omitempty"`
	MaxUsage uint64            `json:"max_usage,omitempty"`
	Stats    map[string]uint64 `json:"stats,omitempty"`
	Failcnt  uint64            `json:"failcnt,omitempty"`
	Limit    uint64            `json:"limit,omitempty"`
}

// PidsStats is the pids sample.
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioStats is left empty by berthd (the CLI shows 0B).
type BlkioStats struct {
	IoServiceBytesRecursive []any `json:"io_service_bytes_recursive"`
}

// StatsResponse is one sample of GET /containers/{id}/stats.
type StatsResponse struct {
	Read        string      `json:"read"`
	PreRead     string      `json:"preread"`
	PidsStats   PidsStats   `json:"pids_stats,omitempty"`
	BlkioStats  BlkioStats  `json:"blkio_stats,omitempty"`
	NumProcs    uint32      `json:"num_procs"`
	CPUStats    CPUStats    `json:"cpu_stats,omitempty"`
	PreCPUStats CPUStats    `json:"precpu_stats,omitempty"`
	MemoryStats MemoryStats `json:"memory_stats,omitempty"`
	Name        string      `json:"name,omitempty"`
	ID          string      `json:"id,omitempty"`
	// Networks are per-interface counters in the container's namespace (omitted for host/none).
	Networks map[string]NetworkStats `json:"networks,omitempty"`
}

// NetworkStats are one interface's counters.
type NetworkStats struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

// PathStat is the X-Docker-Container-Path-Stat header of the archive endpoints (base64 JSON).
type PathStat struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	Mode       uint32 `json:"mode"`
	Mtime      string `json:"mtime"`
	LinkTarget string `json:"linkTarget"`
}

// CommitOptions is the query and body of POST /commit.
type CommitOptions struct {
	Repo, Tag, Comment, Author string
	Changes                    []string
	Pause                      bool
	Config                     *Config
}

// UpdateConfig is the body of POST /containers/{id}/update.
type UpdateConfig struct {
	Resources
	RestartPolicy RestartPolicy `json:"RestartPolicy"`
}

// UpdateResponse is the answer of POST /containers/{id}/update.
type UpdateResponse struct {
	Warnings []string `json:"Warnings"`
}
