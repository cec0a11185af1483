package builder

import (
	"encoding/json"
	"strconv"
	"strings"
	"syscall"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
)

// cacheKey is the part of a step's container config the cache compares, as dockerd's cache does:
// everything but the per-container fields (hostname, image).
func cacheKey(c *imagetypes.ContainerConfig) string {
	k := copyConfig(c)
	k.Hostname, k.Domainname, k.Image = "", "", ""
	b, _ := json.Marshal(k)
	return string(b)
}

// cacheMatch picks the newest child of parent whose container_config matches probe and whose platform
// is arch.
func cacheMatch(children []*Image, parent string, probe *imagetypes.ContainerConfig, arch string) string {
	want := cacheKey(probe)
	var best *Image
	for _, c := range children {
		cfg := c.Config
		if cfg == nil || cfg.Parent != parent || cfg.ContainerConfig == nil {
			continue
		}
		if arch != "" && cfg.Architecture != "" && cfg.Architecture != arch {
			continue
		}
		if cacheKey(cfg.ContainerConfig) != want {
			continue
		}
		if best == nil || cfg.Created != nil && best.Config.Created != nil && cfg.Created.After(*best.Config.Created) {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV,
	"STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP,
	"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH,
	"XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
}

// validSignal accepts what dockerd's STOPSIGNAL accepts: a number, or a name with or without SIG.
func validSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return errdefs.ErrInvalidArgument.WithMessage("Invalid signal: " + s)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if _, ok := signals[name]; ok {
		return nil
	}
	if strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return nil
	}
	return errdefs.ErrInvalidArgument.WithMessage("Invalid signal: " + s)
}
