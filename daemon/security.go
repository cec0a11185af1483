package daemon

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/berthd/berthd/daemon/config"
	"github.com/berthd/berthd/daemon/containers"
	"github.com/berthd/berthd/daemon/containers/oci"
	"github.com/berthd/berthd/plugin/manager"
)

// containerSecurity resolves the daemon's confinement defaults once at start: the seccomp profile file is
// read and checked now, so a bad one stops the daemon instead of every container start. It also returns
// /info's SecurityOptions, which list only what is enforced, and warnings for /info.
func containerSecurity(cfg *config.Config) (containers.SecurityConfig, []string, []string, error) {
	sc := containers.SecurityConfig{
		NoNewPrivileges: cfg.NoNewPrivileges,
		Host:            oci.HostSecurity{AppArmor: appArmorEnabled()},
	}
	var opts []string
	warnings := apiWarnings(cfg)
	if sc.Host.AppArmor {
		// dockerd loads and applies its docker-default profile here; berthd does not, so it says so
		// rather than listing name=apparmor.
		warnings = append(warnings, "WARNING: AppArmor is enabled on this host but berthd does not apply dockerd's docker-default profile; containers run without AppArmor confinement unless --security-opt apparmor=<loaded profile> is given")
	}
	switch p := cfg.SeccompProfile; p {
	case "", config.SeccompProfileBuiltin:
		opts = append(opts, "name=seccomp,profile=builtin")
	case config.SeccompProfileUnconfined:
		sc.SeccompProfile = oci.SeccompUnconfined
		opts = append(opts, "name=seccomp,profile=unconfined")
	default:
		b, err := os.ReadFile(p)
		if err != nil {
			return sc, nil, nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", p, err)
		}
		if err := oci.ValidateSeccompProfile(string(b)); err != nil {
			return sc, nil, nil, fmt.Errorf("seccomp profile (%s): %w", p, err)
		}
		sc.SeccompProfile = string(b)
		opts = append(opts, "name=seccomp,profile="+p)
	}
	if cfg.NoNewPrivileges {
		opts = append(opts, "name=no-new-privileges")
	}
	return sc, opts, warnings, nil
}

func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && bytes.HasPrefix(b, []byte("Y"))
}

// SetAuthzChain tells the plugin manager which plugins guard the API (api/server/authz), so that taking
// one of them away is deliberate.
func (d *Daemon) SetAuthzChain(c manager.AuthzChain) {
	if d.plugins != nil && d.plugins.manager != nil {
		manager.SetAuthzChain(d.plugins.manager, c)
	}
}

// apiWarnings are dockerd's /info warnings for a TCP API that is not mutual TLS: whoever reaches it is
// root on the host.
func apiWarnings(cfg *config.Config) []string {
	const why = `
         Access to the remote API is equivalent to root access on the host. Refer
         to the 'Docker daemon attack surface' section in the documentation for
         more information: https://docs.docker.com/go/attack-surface/`
	var out []string
	for _, h := range cfg.Hosts {
		proto, addr, _ := strings.Cut(h, "://")
		if proto != "tcp" {
			continue
		}
		switch {
		case !cfg.TLSEnabled():
			out = append(out, fmt.Sprintf("WARNING: API is accessible on http://%s without encryption.%s", addr, why))
		case cfg.TLSVerify == nil || !*cfg.TLSVerify:
			out = append(out, fmt.Sprintf("WARNING: API is accessible on https://%s without TLS client verification.%s", addr, why))
		}
	}
	return out
}
