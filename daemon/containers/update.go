package containers

import (
	"context"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update changes a container's resources and restart policy (POST /containers/{id}/update); a running
// container's cgroup is updated in place.
func (s *lifecycle) Update(ctx context.Context, ref string, u ctypes.UpdateConfig) ([]string, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := *c.HostConfig
	r := u.Resources
	if err := refuseUnsupported(&ctypes.HostConfig{Resources: r}); err != nil {
		return nil, err
	}
	if r.MemoryReservation != 0 {
		next.MemoryReservation = r.MemoryReservation
	}
	if r.CpusetMems != "" {
		next.CpusetMems = r.CpusetMems
	}
	if r.Memory != 0 {
		next.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		next.MemorySwap = r.MemorySwap
	}
	if r.NanoCPUs != 0 {
		next.NanoCPUs = r.NanoCPUs
	}
	if r.CPUShares != 0 {
		next.CPUShares = r.CPUShares
	}
	if r.CPUQuota != 0 {
		next.CPUQuota = r.CPUQuota
	}
	if r.CPUPeriod != 0 {
		next.CPUPeriod = r.CPUPeriod
	}
	if r.CpusetCpus != "" {
		next.CpusetCpus = r.CpusetCpus
	}
	if r.PidsLimit != nil {
		// 0 and any negative value mean "unlimited", recorded as 0 (dockerd's rule for update).
		n := max(*r.PidsLimit, 0)
		next.PidsLimit = &n
	}
	if u.RestartPolicy.Name != "" {
		if next.AutoRemove && u.RestartPolicy.Name != ctypes.RestartPolicyDisabled {
			return nil, invalidf("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		next.RestartPolicy = u.RestartPolicy
	}
	if err := validateHostConfig(&next); err != nil {
		return nil, err
	}
	if c.task != nil {
		lr := &specs.LinuxResources{}
		lr.Memory, lr.CPU = oci.Limits{
			Memory: next.Memory, MemorySwap: next.MemorySwap,
			NanoCPUs: next.NanoCPUs, CPUShares: next.CPUShares, CPUQuota: next.CPUQuota, CPUPeriod: next.CPUPeriod, CpusetCpus: next.CpusetCpus,
		}.Resources()
		if r.PidsLimit != nil {
			// -1 is runc's "max"; 0 would leave the current limit in place.
			lr.Pids = &specs.LinuxPids{Limit: -1}
			if *next.PidsLimit > 0 {
				lr.Pids.Limit = *next.PidsLimit
			}
		}
		if next.MemoryReservation != 0 {
			if lr.Memory == nil {
				lr.Memory = &specs.LinuxMemory{}
			}
			mr := next.MemoryReservation
			lr.Memory.Reservation = &mr
		}
		if next.CpusetMems != "" {
			if lr.CPU == nil {
				lr.CPU = &specs.LinuxCPU{}
			}
			lr.CPU.Mems = next.CpusetMems
		}
		if err := c.task.UpdateResources(ctx, lr); err != nil {
			return nil, err
		}
	}
	old := c.HostConfig
	c.HostConfig = &next
	if err := c.save(); err != nil {
		c.HostConfig = old
		return nil, err
	}
	s.logEvent(c, "update", nil)
	return []string{}, nil
}
