package containers

import (
	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
)

// SecurityConfig is the daemon's confinement defaults (daemon.json seccomp-profile, no-new-privileges)
// and what the host can enforce.
type SecurityConfig struct {
	// SeccompProfile is the daemon's profile: "" dockerd's built-in one, oci.SeccompUnconfined none, else
	// the JSON text of the profile (read from --seccomp-profile at start).
	SeccompProfile string
	// NoNewPrivileges is the default of every container (--security-opt no-new-privileges=false overrides).
	NoNewPrivileges bool
	// Host is what the kernel can enforce (AppArmor).
	Host oci.HostSecurity
}

// applySecurityOpts checks --security-opt at create, so that an option berthd cannot honour is a 400 and
// not a container that fails at start (or, worse, runs unconfined), and records the default masked and
// read-only paths in the HostConfig as dockerd does (inspect shows them).
func applySecurityOpts(cfg SecurityConfig, hc *ctypes.HostConfig) error {
	so, err := oci.ParseSecurityOpt(hc.SecurityOpt, cfg.Host)
	if err != nil {
		return err
	}
	switch {
	case so.UnconfinedSystemPaths:
		hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
	case hc.Privileged:
	default:
		if hc.MaskedPaths == nil {
			hc.MaskedPaths = append([]string(nil), oci.DefaultMaskedPaths...)
		}
		if hc.ReadonlyPaths == nil {
			hc.ReadonlyPaths = append([]string(nil), oci.DefaultReadonlyPaths...)
		}
	}
	return nil
}

// securityFor resolves a container's confinement: its own --security-opt first, then the daemon's
// defaults, as dockerd orders them.
func securityFor(cfg SecurityConfig, hc *ctypes.HostConfig) (oci.Security, error) {
	so, err := oci.ParseSecurityOpt(hc.SecurityOpt, cfg.Host)
	if err != nil {
		return oci.Security{}, err
	}
	sec := oci.Security{
		Seccomp:         cfg.SeccompProfile,
		NoNewPrivileges: cfg.NoNewPrivileges,
		WritableCgroups: so.WritableCgroups,
		AppArmor:        so.AppArmor,
	}
	if so.Seccomp != "" {
		sec.Seccomp = so.Seccomp
	}
	if so.NoNewPrivileges != nil {
		sec.NoNewPrivileges = *so.NoNewPrivileges
	}
	return sec, nil
}
