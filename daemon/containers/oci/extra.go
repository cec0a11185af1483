package oci

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Extra are the settings Build applies last, after the rest of the spec is made: joining another
// container's PID namespace, device cgroup rules, the remaining cgroup knobs and annotations.
type Extra struct {
	// PIDNSPath joins this PID namespace (--pid container:<id>) instead of making one.
	PIDNSPath string
	// DeviceCgroupRules are --device-cgroup-rule entries ("c 1:3 rwm", "a *:* m").
	DeviceCgroupRules []string
	// MemoryReservation is the soft memory limit in bytes.
	MemoryReservation int64
	// CpusetMems are the memory nodes the container may use.
	CpusetMems string
	// Annotations go into the spec as they are.
	Annotations map[string]string
	// NoShm is --ipc none: a private IPC namespace without the default /dev/shm.
	NoShm bool
}

// domainnameSysctl sets the UTS domain name: runc before 1.2 ignores the spec's domainname field, so
// dockerd sets it as this sysctl, which every runc applies inside the container's UTS namespace.
func domainnameSysctl(s *specs.Spec) {
	if s.Domainname == "" {
		return
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UTSNamespace && ns.Path == "" {
			if _, ok := s.Linux.Sysctl["kernel.domainname"]; ok {
				return
			}
			// A copy: the caller's map is the container's own HostConfig.Sysctls.
			sysctl := map[string]string{"kernel.domainname": s.Domainname}
			for k, v := range s.Linux.Sysctl {
				sysctl[k] = v
			}
			s.Linux.Sysctl = sysctl
			return
		}
	}
}

func applyExtra(s *specs.Spec, e Extra) error {
	domainnameSysctl(s)
	if e.NoShm {
		ms := s.Mounts[:0]
		for _, m := range s.Mounts {
			if !(m.Destination == "/dev/shm" && m.Source == "shm") {
				ms = append(ms, m)
			}
		}
		s.Mounts = ms
	}
	if e.PIDNSPath != "" {
		found := false
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace {
				s.Linux.Namespaces[i].Path = e.PIDNSPath
				found = true
			}
		}
		if !found {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: e.PIDNSPath})
		}
	}
	for _, r := range e.DeviceCgroupRules {
		rule, err := ParseDeviceCgroupRule(r)
		if err != nil {
			return err
		}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rule)
	}
	SetSoftLimits(s.Linux.Resources, e.MemoryReservation, e.CpusetMems)
	if len(e.Annotations) > 0 {
		s.Annotations = map[string]string{}
		for k, v := range e.Annotations {
			s.Annotations[k] = v
		}
	}
	return nil
}

// ParseDeviceCgroupRule parses one --device-cgroup-rule: "TYPE MAJOR:MINOR ACCESS" with TYPE a, b or c,
// MAJOR and MINOR numbers or "*", ACCESS a combination of r, w and m.
func ParseDeviceCgroupRule(r string) (specs.LinuxDeviceCgroup, error) {
	bad := errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid device cgroup rule format: '%s'", r))
	f := strings.Fields(r)
	if len(f) != 3 || strings.Join(f, " ") != r {
		return specs.LinuxDeviceCgroup{}, bad
	}
	typ, nums, access := f[0], f[1], f[2]
	if typ != "a" && typ != "b" && typ != "c" {
		return specs.LinuxDeviceCgroup{}, bad
	}
	if access == "" || len(access) > 3 || strings.Trim(access, "rwm") != "" {
		return specs.LinuxDeviceCgroup{}, bad
	}
	majS, minS, ok := strings.Cut(nums, ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(v string) (*int64, error) {
		if v == "*" {
			return nil, nil
		}
		if v == "" || strings.Trim(v, "0123456789") != "" {
			return nil, bad
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, bad
		}
		return &n, nil
	}
	major, err := num(majS)
	if err != nil {
		return specs.LinuxDeviceCgroup{}, err
	}
	minor, err := num(minS)
	if err != nil {
		return specs.LinuxDeviceCgroup{}, err
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: major, Minor: minor, Access: access}, nil
}
