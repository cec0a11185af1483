package oci

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Limits are a container's memory and CPU settings as HostConfig gives them. Create (Build) and a live
// update (POST /containers/{id}/update) both turn them into cgroup settings through Resources, so the two
// cannot drift apart.
type Limits struct {
	Memory     int64
	MemorySwap int64
	NanoCPUs   int64
	CPUShares  int64
	CPUQuota   int64
	CPUPeriod  int64
	CpusetCpus string
}

// cfsPeriod is the CFS period NanoCPUs are expressed in (dockerd's and the kernel's default).
const cfsPeriod = 100000

// Resources maps l to the spec's memory and CPU sections; each is nil when l sets nothing of it. A
// memory limit with no swap setting allows as much swap again (swap = 2 × memory), dockerd's default;
// MemorySwap -1 is unlimited swap and passes through. NanoCPUs win over CPUQuota, as in dockerd, which
// refuses both together before this point.
func (l Limits) Resources() (*specs.LinuxMemory, *specs.LinuxCPU) {
	var mem *specs.LinuxMemory
	if l.Memory != 0 || l.MemorySwap != 0 {
		mem = &specs.LinuxMemory{}
		if l.Memory != 0 {
			v := l.Memory
			mem.Limit = &v
		}
		if l.MemorySwap != 0 {
			v := l.MemorySwap
			mem.Swap = &v
		} else if l.Memory > 0 {
			v := l.Memory * 2
			mem.Swap = &v
		}
	}
	var cpu *specs.LinuxCPU
	if l.NanoCPUs != 0 || l.CPUShares != 0 || l.CPUQuota != 0 || l.CpusetCpus != "" {
		cpu = &specs.LinuxCPU{Cpus: l.CpusetCpus}
		if l.CPUShares != 0 {
			v := uint64(l.CPUShares)
			cpu.Shares = &v
		}
		if l.NanoCPUs != 0 {
			period := uint64(cfsPeriod)
			quota := l.NanoCPUs * cfsPeriod / 1e9
			cpu.Period, cpu.Quota = &period, &quota
		} else if l.CPUQuota != 0 {
			q := l.CPUQuota
			cpu.Quota = &q
			if l.CPUPeriod != 0 {
				p := uint64(l.CPUPeriod)
				cpu.Period = &p
			}
		}
	}
	return mem, cpu
}

// SetSoftLimits adds a memory reservation and memory nodes (cpuset.mems) to r, on top of what Limits set,
// at create and at a live update alike; zero values leave r as it is.
func SetSoftLimits(r *specs.LinuxResources, memoryReservation int64, cpusetMems string) {
	if memoryReservation != 0 {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		r.Memory.Reservation = &memoryReservation
	}
	if cpusetMems != "" {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Mems = cpusetMems
	}
}
