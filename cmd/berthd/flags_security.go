package main

import (
	"github.com/berthd/berthd/daemon/config"
	"github.com/spf13/pflag"
)

func init() {
	flagKeys["authorization-plugin"] = "authorization-plugins"
}

// addSecurityFlags binds dockerd's security flags to the config (daemon/config/security.go).
func addSecurityFlags(fs *pflag.FlagSet, c *config.Config) {
	fs.StringVar(&c.SeccompProfile, "seccomp-profile", "", `Path to seccomp profile, "unconfined" to disable it, or "builtin" for the default profile`)
	fs.BoolVar(&c.NoNewPrivileges, "no-new-privileges", false, "Set no-new-privileges by default for new containers")
	fs.BoolVar(&c.SELinuxEnabled, "selinux-enabled", false, "Enable selinux support (not supported by berthd: refused)")
	fs.StringVar(&c.UsernsRemap, "userns-remap", "", "User/Group setting for user namespaces (not supported by berthd: refused)")
	fs.StringArrayVar(&c.AuthorizationPlugins, "authorization-plugin", nil, "Authorization plugins to load")
}
