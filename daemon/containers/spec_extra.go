package containers

import (
	"fmt"
	"slices"
	"strings"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// extraSpec gathers the spec settings of oci.Extra: another container's PID namespace to join, device
// cgroup rules and the cgroup knobs not covered by the rest of buildSpec.
func (s *specBuilder) extraSpec(c *Container) (oci.Extra, error) {
	hc := c.HostConfig
	e := oci.Extra{
		DeviceCgroupRules: hc.DeviceCgroupRules, MemoryReservation: hc.MemoryReservation,
		CpusetMems: hc.CpusetMems, Annotations: hc.Annotations, NoShm: hc.IpcMode == "none",
	}
	if ref, ok := strings.CutPrefix(hc.PidMode, "container:"); ok {
		p, err := s.runningPid(ref, "PID")
		if err != nil {
			return e, err
		}
		e.PIDNSPath = fmt.Sprintf("/proc/%d/ns/pid", p)
	}
	return e, nil
}

// runningPid is the pid of the running container ref whose namespace (what) another one joins.
func (s *specBuilder) runningPid(ref, what string) (int, error) {
	t, err := s.get(ref)
	if err != nil {
		return 0, err
	}
	t.State.mu.Lock()
	running, pid := t.State.Running, t.State.Pid
	t.State.mu.Unlock()
	if !running || pid == 0 {
		return 0, errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot join %s of a non running container: %s", what, t.ID))
	}
	return pid, nil
}

// withPrimaryGroup puts the primary group first among the supplementary groups, as a process started by
// dockerd has it (`id` shows groups=0(root) for root), without listing a group twice.
func withPrimaryGroup(u oci.User) oci.User {
	gids := []uint32{u.GID}
	for _, g := range u.AdditionalGids {
		if !slices.Contains(gids, g) {
			gids = append(gids, g)
		}
	}
	u.AdditionalGids = gids
	return u
}

// execConsoleSize decides an exec's TTY size: the start request's, else the one given at create (API
// 1.42), set in the process spec so that the first output is already laid out for it.
func execConsoleSize(proc *specs.Process, opts ctypes.ExecOptions, atStart *[2]uint) *[2]uint {
	size := atStart
	if size == nil || size[0] == 0 || size[1] == 0 {
		size = opts.ConsoleSize
	}
	if size == nil || size[0] == 0 || size[1] == 0 || !opts.Tty {
		return size
	}
	proc.ConsoleSize = &specs.Box{Height: size[0], Width: size[1]}
	return size
}
