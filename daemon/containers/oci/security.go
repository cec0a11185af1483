package oci

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SeccompUnconfined is the profile value that turns seccomp off (--security-opt seccomp=unconfined, the
// daemon's seccomp-profile "unconfined").
const SeccompUnconfined = "unconfined"

// Security is a container's confinement beyond capabilities and paths, already resolved from its
// --security-opt values and the daemon's defaults.
type Security struct {
	// Seccomp is the profile: "" is dockerd's built-in default profile, SeccompUnconfined none, anything
	// else the JSON text of a profile. Privileged containers get none whatever it says, as in dockerd.
	Seccomp string
	// NoNewPrivileges sets the process's no_new_privs bit.
	NoNewPrivileges bool
	// WritableCgroups, when set, decides whether /sys/fs/cgroup is mounted read-write; unset, only
	// privileged containers get it writable.
	WritableCgroups *bool
	// AppArmor is the AppArmor profile to run under ("" none). Only set on hosts where AppArmor is
	// enabled: ParseSecurityOpt refuses a profile elsewhere.
	AppArmor string
}

// SecurityOpts is what a container's --security-opt list asks for.
type SecurityOpts struct {
	// Seccomp is "" (the daemon's profile), SeccompUnconfined, or a profile's JSON.
	Seccomp string
	// NoNewPrivileges is nil when the list does not mention it (the daemon's default applies).
	NoNewPrivileges *bool
	WritableCgroups *bool
	// UnconfinedSystemPaths is systempaths=unconfined: no masked or read-only paths.
	UnconfinedSystemPaths bool
	// AppArmor is the profile named by apparmor=..., "" when not given.
	AppArmor string
}

// HostSecurity is what the host can enforce.
type HostSecurity struct {
	// AppArmor is true when the kernel has AppArmor enabled.
	AppArmor bool
}

func invalidSecurityOpt(n int, opt string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid --security-opt %d: %q", n, opt))
}

// ParseSecurityOpt reads a container's --security-opt values with dockerd's grammar (key=value, the old
// key:value, the bare no-new-privileges) and dockerd's error wording. Where dockerd accepts an option it
// then silently ignores on this host (an AppArmor profile without AppArmor, SELinux labels without
// SELinux), berthd refuses it by name: a security setting must never be accepted and not enforced.
func ParseSecurityOpt(opts []string, host HostSecurity) (SecurityOpts, error) {
	var out SecurityOpts
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			t := true
			out.NoNewPrivileges = &t
			continue
		}
		if opt == "disable" {
			// dockerd's old spelling of label=disable.
			continue
		}
		var k, v string
		var ok bool
		if strings.Contains(opt, "=") {
			k, v, ok = strings.Cut(opt, "=")
		} else {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return out, invalidSecurityOpt(1, opt)
		}
		switch k {
		case "label":
			if v != "disable" {
				return out, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid --security-opt %q: SELinux is not enabled in berthd (only label=disable is accepted)", opt))
			}
		case "apparmor":
			if v != "unconfined" && !host.AppArmor {
				return out, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid --security-opt %q: AppArmor is not enabled on this host", opt))
			}
			if v != "unconfined" {
				out.AppArmor = v
			}
		case "seccomp":
			if v == "" {
				return out, invalidSecurityOpt(2, opt)
			}
			if v != SeccompUnconfined {
				if err := ValidateSeccompProfile(v); err != nil {
					return out, err
				}
			}
			out.Seccomp = v
		case "no-new-privileges", "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return out, invalidSecurityOpt(2, opt)
			}
			if k == "no-new-privileges" {
				out.NoNewPrivileges = &b
			} else {
				out.WritableCgroups = &b
			}
		case "systempaths":
			if v != "unconfined" {
				return out, invalidSecurityOpt(2, opt)
			}
			out.UnconfinedSystemPaths = true
		default:
			return out, invalidSecurityOpt(2, opt)
		}
	}
	return out, nil
}

// ValidateSeccompProfile checks that profile is a seccomp profile the runtime can load, so that a bad
// one is a 400 at create rather than a failed start later.
func ValidateSeccompProfile(profile string) error {
	caps := append([]string(nil), DefaultCapabilities...)
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}}
	if _, err := seccomp.LoadProfile(profile, rs); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return nil
}

// applySecurity sets seccomp, no_new_privs, AppArmor and the cgroup mount's mode on a spec whose
// capabilities are final: the default profile's rules depend on them (CAP_SYS_ADMIN allows mount, and so
// on), as dockerd's do.
func applySecurity(s *specs.Spec, o *Options) error {
	sec := o.Security
	s.Process.NoNewPrivileges = sec.NoNewPrivileges
	s.Process.ApparmorProfile = sec.AppArmor
	writable := o.Privileged
	if sec.WritableCgroups != nil {
		writable = *sec.WritableCgroups
	}
	for i := range s.Mounts {
		if s.Mounts[i].Type != "cgroup" {
			continue
		}
		var opts []string
		for _, m := range s.Mounts[i].Options {
			if m != "ro" && m != "rw" {
				opts = append(opts, m)
			}
		}
		mode := "ro"
		if writable {
			mode = "rw"
		}
		s.Mounts[i].Options = append([]string{mode}, opts...)
	}
	if o.Privileged || sec.Seccomp == SeccompUnconfined {
		s.Linux.Seccomp = nil
		return nil
	}
	var err error
	if sec.Seccomp == "" {
		s.Linux.Seccomp, err = seccomp.GetDefaultProfile(s)
	} else {
		s.Linux.Seccomp, err = seccomp.LoadProfile(sec.Seccomp, s)
	}
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return nil
}
