package daemon

import (
	"os"
	"os/exec"

	"github.com/berthd/berthd/daemon/system"
	"github.com/berthd/berthd/distribution"

	"github.com/berthd/berthd/daemon/config"
	"github.com/berthd/berthd/daemon/containers"
	"github.com/berthd/berthd/daemon/containers/logger"
	"github.com/pkg/errors"
)

// ValidateConfig checks what the config package cannot judge alone: the default log driver and its
// options (the logger package knows them), the host's support for the systemd cgroup driver and the
// default runtime's binary. It runs at start-up, for --validate and on reload.
func ValidateConfig(cfg *config.Config) error {
	if err := logger.Validate(cfg.LogConfig.Type, cfg.LogConfig.Config); err != nil {
		return errors.Wrap(err, "failed to set log opts")
	}
	_, err := containerDefaults(cfg)
	return err
}

// containerDefaults turns the administrator's options into the container service's defaults.
func containerDefaults(cfg *config.Config) (containers.Defaults, error) {
	d := containers.Defaults{
		LogDriver:     cfg.LogConfig.Type,
		LogOpts:       cfg.LogConfig.Config,
		ShmSize:       int64(cfg.ShmSize),
		CgroupnsMode:  cfg.CgroupNamespaceMode,
		Init:          cfg.Init,
		Ulimits:       cfg.Ulimits,
		SystemdCgroup: cfg.CgroupDriver() == config.CgroupDriverSystemd,
	}
	if d.SystemdCgroup {
		// runc's systemd driver asks systemd over D-Bus for every container's scope.
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return d, errors.New("exec-opts native.cgroupdriver=systemd: systemd is not running on this host (no /run/systemd/system)")
		}
	}
	rt, ok := cfg.RuntimeFor(cfg.DefaultRuntime)
	if !ok {
		return d, errors.Errorf("specified default runtime '%s' does not exist", cfg.DefaultRuntime)
	}
	if cfg.DefaultRuntime != "" && cfg.DefaultRuntime != config.StockRuntimeName {
		if _, err := exec.LookPath(rt.Path); err != nil {
			return d, errors.Wrapf(err, "default runtime %s", cfg.DefaultRuntime)
		}
		d.RuntimeBinary = rt.Path
	}
	return d, nil
}

// mirrors are the registry mirrors in dockerd's normalised form (trailing slash).
func mirrors(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.RegistryMirrors))
	for _, m := range cfg.RegistryMirrors {
		if v, err := config.ValidateMirror(m); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// adminInfo is what /info reports of the administrator's options.
func adminInfo(cfg *config.Config) system.AdminInfo {
	a := system.AdminInfo{
		LoggingDriver:  cfg.LogConfig.Type,
		CgroupDriver:   cfg.CgroupDriver(),
		Mirrors:        mirrors(cfg),
		Insecure:       cfg.InsecureRegistries,
		DefaultRuntime: cfg.DefaultRuntime,
		Runtimes:       map[string]string{},
	}
	for n, r := range cfg.Runtimes {
		a.Runtimes[n] = r.Path
	}
	return a
}

// reloadRegistries hands reloaded registry settings to distribution (SIGHUP, as dockerd).
func (d *Daemon) reloadRegistries(cfg *config.Config) {
	if d.imgs == nil || d.imgs.dist == nil {
		return
	}
	d.imgs.dist.SetRegistries(distribution.Registries{
		Mirrors: mirrors(cfg), Insecure: cfg.InsecureRegistries,
		MaxConcurrentDownloads: cfg.MaxConcurrentDownloads, MaxConcurrentUploads: cfg.MaxConcurrentUploads,
	})
}
