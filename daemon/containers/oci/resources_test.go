package oci

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

func TestLimitsResources(t *testing.T) {
	const m = 64 << 20
	for _, tc := range []struct {
		name string
		l    Limits
		mem  *specs.LinuxMemory
		cpu  *specs.LinuxCPU
	}{
		{name: "nothing set"},
		// dockerd: memory set and swap unset -> swap = 2 x memory.
		{name: "swap default", l: Limits{Memory: m}, mem: &specs.LinuxMemory{Limit: i64(m), Swap: i64(2 * m)}},
		{name: "swap given", l: Limits{Memory: m, MemorySwap: 3 * m}, mem: &specs.LinuxMemory{Limit: i64(m), Swap: i64(3 * m)}},
		{name: "swap unlimited", l: Limits{Memory: m, MemorySwap: -1}, mem: &specs.LinuxMemory{Limit: i64(m), Swap: i64(-1)}},
		{name: "nano cpus", l: Limits{NanoCPUs: 1500000000}, cpu: &specs.LinuxCPU{Period: u64(100000), Quota: i64(150000)}},
		{name: "quota and period", l: Limits{CPUQuota: 50000, CPUPeriod: 200000}, cpu: &specs.LinuxCPU{Period: u64(200000), Quota: i64(50000)}},
		{name: "quota alone", l: Limits{CPUQuota: 50000}, cpu: &specs.LinuxCPU{Quota: i64(50000)}},
		{name: "shares and cpuset", l: Limits{CPUShares: 512, CpusetCpus: "0-1"}, cpu: &specs.LinuxCPU{Shares: u64(512), Cpus: "0-1"}},
		{name: "period alone sets nothing", l: Limits{CPUPeriod: 200000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, cpu := tc.l.Resources()
			assert.Check(t, is.DeepEqual(mem, tc.mem))
			assert.Check(t, is.DeepEqual(cpu, tc.cpu))
		})
	}
}

// Build and a live update share the mapping; Build must show the same sections Resources gives.
func TestBuildUsesLimits(t *testing.T) {
	l := Limits{Memory: 32 << 20, NanoCPUs: 5e8, CPUShares: 256}
	s, err := Build(Options{Args: []string{"sh"}, Memory: l.Memory, NanoCPUs: l.NanoCPUs, CPUShares: l.CPUShares})
	assert.NilError(t, err)
	mem, cpu := l.Resources()
	assert.Check(t, is.DeepEqual(s.Linux.Resources.Memory, mem))
	assert.Check(t, is.DeepEqual(s.Linux.Resources.CPU, cpu))
	assert.Check(t, is.Equal(*s.Linux.Resources.Memory.Swap, int64(64<<20)))
}
