package containers

import (
	"fmt"
	"strings"

	"github.com/berthd/berthd/daemon/containers/oci"
	"github.com/containerd/errdefs"
)

// extraSpec gathers the spec settings of oci.Extra: another container's PID namespace to join, device
// cgroup rules and the cgroup knobs not covered by the rest of buildSpec.
func (s *Service) extraSpec(c *Container) (oci.Extra, error) {
	hc := c.HostConfig
	e := oci.Extra{
		DeviceCgroupRules: hc.DeviceCgroupRules, MemoryReservation: hc.MemoryReservation,
		CpusetMems: hc.CpusetMems, Annotations: hc.Annotations,
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
func (s *Service) runningPid(ref, what string) (int, error) {
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
