package config

import (
	"fmt"
	"strings"
)

// Seccomp profile names daemon.json's seccomp-profile takes besides a path.
const (
	SeccompProfileBuiltin    = "builtin"
	SeccompProfileUnconfined = "unconfined"
)

// SecurityConfig is the daemon's security options (embedded in Config, so its keys sit at daemon.json's
// top level as dockerd's do).
type SecurityConfig struct {
	// SeccompProfile is a path to a profile, "unconfined" or "builtin" ("" is builtin).
	SeccompProfile string `json:"seccomp-profile,omitempty"`
	// NoNewPrivileges is every container's default for no-new-privileges.
	NoNewPrivileges bool `json:"no-new-privileges,omitempty"`
	// SELinuxEnabled is refused when true: berthd does not label containers.
	SELinuxEnabled bool `json:"selinux-enabled,omitempty"`
	// UsernsRemap is refused when set: berthd has no user-namespace remapping.
	UsernsRemap string `json:"userns-remap,omitempty"`
	// AuthorizationPlugins are asked, in order, about every API request (reloadable).
	AuthorizationPlugins []string `json:"authorization-plugins,omitempty"`
}

// validateSecurity refuses what berthd cannot enforce: accepting it would leave an admin believing
// containers are confined in a way they are not.
func (c *SecurityConfig) validateSecurity() error {
	if c.SELinuxEnabled {
		return fmt.Errorf("selinux-enabled: SELinux support is not implemented in berthd; remove --selinux-enabled (or \"selinux-enabled\" from daemon.json)")
	}
	if c.UsernsRemap != "" {
		return fmt.Errorf("userns-remap: user namespace remapping is not implemented in berthd; remove --userns-remap (or \"userns-remap\" from daemon.json)")
	}
	for _, p := range c.AuthorizationPlugins {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("authorization-plugins: empty plugin name")
		}
	}
	return nil
}
