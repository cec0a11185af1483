package system

import (
	"net"

	"github.com/berthd/berthd/api/types/system"
)

// AdminInfo is what the administrator's options put in force, as /info reports it.
type AdminInfo struct {
	LoggingDriver string
	CgroupDriver  string
	// Mirrors are the registry mirrors (normalised URLs); Insecure the insecure registries as given.
	Mirrors  []string
	Insecure []string
	// Runtimes maps extra runtime names to their binaries; DefaultRuntime names the default.
	Runtimes       map[string]string
	DefaultRuntime string
	// Warnings are added to /info's (e.g. an option with a degraded effect on this host).
	Warnings []string
}

func (a AdminInfo) apply(info *system.Info) {
	if a.LoggingDriver != "" {
		info.LoggingDriver = a.LoggingDriver
	}
	if a.CgroupDriver != "" {
		info.CgroupDriver = a.CgroupDriver
	}
	info.Plugins.Log = []string{"json-file", "local"}
	rc := info.RegistryConfig
	if rc == nil {
		rc = &system.RegistryConfig{IndexConfigs: map[string]any{}}
		info.RegistryConfig = rc
	}
	rc.Mirrors = append([]string{}, a.Mirrors...)
	for _, r := range a.Insecure {
		if _, n, err := net.ParseCIDR(r); err == nil {
			rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, n.String())
			continue
		}
		rc.IndexConfigs[r] = map[string]any{"Name": r, "Mirrors": []string{}, "Secure": false, "Official": false}
	}
	rc.IndexConfigs["docker.io"] = map[string]any{"Name": "docker.io", "Mirrors": append([]string{}, a.Mirrors...), "Secure": true, "Official": true}
	for n, p := range a.Runtimes {
		if info.Runtimes == nil {
			info.Runtimes = map[string]system.Runtime{}
		}
		info.Runtimes[n] = system.Runtime{Path: p}
	}
	if a.DefaultRuntime != "" {
		info.DefaultRuntime = a.DefaultRuntime
	}
	info.Warnings = append(info.Warnings, a.Warnings...)
}
