package containers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/containerd/errdefs"
)

// cgroupRoot is where cgroup v1 controllers are mounted (the machine is cgroup v1 hybrid); the
// container's cgroup is its CgroupsPath under each controller.
const cgroupRoot = "/sys/fs/cgroup"

func readUint(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// systemCPU is the host's total CPU time in nanoseconds, as dockerd's system_cpu_usage.
func systemCPU() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == "cpu" {
			var total uint64
			for _, v := range f[1:8] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
			return total * (1e9 / 100)
		}
	}
	return 0
}

func (s *monitor) sample(c *Container) ctypes.StatsResponse {
	cg := s.cfg.cgroupDir(c.HostConfig, c.ID)
	var r ctypes.StatsResponse
	r.Read = time.Now().UTC().Format(time.RFC3339Nano)
	r.Name, r.ID = c.Name, c.ID
	acct := filepath.Join(cgroupRoot, "cpu,cpuacct", cg)
	if _, err := os.Stat(acct); err != nil {
		acct = filepath.Join(cgroupRoot, "cpuacct", cg)
	}
	r.CPUStats.CPUUsage.TotalUsage = readUint(filepath.Join(acct, "cpuacct.usage"))
	if b, err := os.ReadFile(filepath.Join(acct, "cpuacct.usage_percpu")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.ParseUint(f, 10, 64)
			r.CPUStats.CPUUsage.PercpuUsage = append(r.CPUStats.CPUUsage.PercpuUsage, n)
		}
	}
	r.CPUStats.SystemUsage = systemCPU()
	r.CPUStats.OnlineCPUs = uint32(runtime.NumCPU())
	mem := filepath.Join(cgroupRoot, "memory", cg)
	r.MemoryStats.Usage = readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	r.MemoryStats.MaxUsage = readUint(filepath.Join(mem, "memory.max_usage_in_bytes"))
	r.MemoryStats.Limit = readUint(filepath.Join(mem, "memory.limit_in_bytes"))
	if total := memTotal(); total > 0 && (r.MemoryStats.Limit == 0 || r.MemoryStats.Limit > total) {
		r.MemoryStats.Limit = total
	}
	r.MemoryStats.Failcnt = readUint(filepath.Join(mem, "memory.failcnt"))
	if b, err := os.ReadFile(filepath.Join(mem, "memory.stat")); err == nil {
		r.MemoryStats.Stats = map[string]uint64{}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				r.MemoryStats.Stats[f[0]] = n
			}
		}
	}
	pids := filepath.Join(cgroupRoot, "pids", cg)
	r.PidsStats.Current = readUint(filepath.Join(pids, "pids.current"))
	r.PidsStats.Limit = readUint(filepath.Join(pids, "pids.max"))
	r.BlkioStats.IoServiceBytesRecursive = []any{}
	r.Networks = s.net.networkStats(c)
	return r
}

// Stats samples the container's cgroup: once (stream false) or every second until ctx ends. A stopped
// container yields zeroed samples, as dockerd's. A one-shot sample is taken at once, without a baseline.
func (s *monitor) Stats(ctx context.Context, ref string, stream, oneShot bool, emit func(ctypes.StatsResponse) error) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	prev := ctypes.StatsResponse{PreRead: "0001-01-01T00:00:00Z"}
	prevRead := "0001-01-01T00:00:00Z"
	first := true
	for {
		var cur ctypes.StatsResponse
		if c.State.IsRunning() {
			cur = s.sample(c)
		} else {
			cur = ctypes.StatsResponse{Read: "0001-01-01T00:00:00Z", Name: c.Name, ID: c.ID, BlkioStats: ctypes.BlkioStats{IoServiceBytesRecursive: []any{}}}
		}
		if !stream && !oneShot && first && c.State.IsRunning() {
			// One sample with a baseline a moment earlier, so the CLI can compute a CPU percentage.
			prev = cur
			prevRead = cur.Read
			time.Sleep(100 * time.Millisecond)
			cur = s.sample(c)
		}
		cur.PreCPUStats = prev.CPUStats
		cur.PreRead = prevRead
		if err := emit(cur); err != nil || !stream {
			return err
		}
		first = false
		prev, prevRead = cur, cur.Read
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// memTotal is the host's memory, the limit of a container without one (as dockerd reports it).
func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// Top lists the container's processes with the host's ps (as dockerd does), keeping the rows whose PID
// belongs to the container.
func (s *monitor) Top(ctx context.Context, ref, psArgs string) (*ctypes.TopResponse, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	task := c.task
	c.mu.Unlock()
	if task == nil || !c.State.IsRunning() {
		return nil, errNotRunning(c.ID)
	}
	procs, err := task.Pids(ctx)
	if err != nil {
		return nil, err
	}
	pids := map[string]bool{}
	for _, p := range procs {
		pids[strconv.Itoa(int(p.Pid))] = true
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Error running ps: " + err.Error())
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return &ctypes.TopResponse{}, nil
	}
	titles := strings.Fields(lines[0])
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Couldn't find PID field in ps output")
	}
	resp := &ctypes.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidCol || !pids[f[pidCol]] {
			continue
		}
		row := f[:len(titles)-1]
		row = append(append([]string(nil), row...), strings.Join(f[len(titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}
