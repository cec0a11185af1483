package containers

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
	"github.com/berthd/berthd/image"
	"github.com/containerd/errdefs"
)

// maxNameLength bounds container names: a name ends up in file names and /etc/hosts lines, and a longer
// one would fail deep inside with "file name too long" (a 500) instead of a clear 400 here.
const maxNameLength = 255

// minHealthDuration is dockerd's lower bound for healthcheck durations (other than 0, "inherit").
const minHealthDuration = time.Millisecond

// validateName checks a requested container name (with or without the leading "/").
func validateName(name string) error {
	n := strings.TrimPrefix(name, "/")
	if len(n) > maxNameLength {
		return invalidf("Invalid container name: name is %d characters long, the limit is %d characters", len(n), maxNameLength)
	}
	if !validContainerName.MatchString(n) {
		return invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

// validateConfig applies dockerd's checks of the portable config: environment entries and healthcheck
// settings. It runs before the image is merged in, on what the client sent.
func validateConfig(cfg *ctypes.Config) error {
	for _, e := range cfg.Env {
		if name, _, _ := strings.Cut(e, "="); name == "" {
			return invalidf("invalid environment variable: %s", e)
		}
	}
	if h := cfg.Healthcheck; h != nil {
		for _, d := range []struct {
			name string
			v    int64
		}{{"Interval", h.Interval}, {"Timeout", h.Timeout}} {
			if d.v != 0 && d.v < int64(minHealthDuration) {
				return invalidf("%s in Healthcheck cannot be less than %s", d.name, minHealthDuration)
			}
		}
		if h.Retries < 0 {
			return invalidf("Retries in Healthcheck cannot be negative")
		}
		for _, d := range []struct {
			name string
			v    int64
		}{{"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
			if d.v != 0 && d.v < int64(minHealthDuration) {
				return invalidf("%s in Healthcheck cannot be less than %s", d.name, minHealthDuration)
			}
		}
	}
	return nil
}

// validateTmpfs checks --tmpfs targets as dockerd's mount parser does.
func validateTmpfs(tmpfs map[string]string) error {
	for dst := range tmpfs {
		if !path.IsAbs(dst) {
			return invalidf("invalid mount path: '%s' mount path must be absolute", dst)
		}
		if path.Clean(dst) == "/" {
			return invalidf("invalid specification: destination can't be '/'")
		}
	}
	return nil
}

// Runtimes berthd runs containers with; both names mean runc through containerd's runc shim.
const defaultRuntime = "runc"

var knownRuntimes = map[string]bool{"runc": true, "io.containerd.runc.v2": true}

func validateRuntime(hc *ctypes.HostConfig) error {
	if hc.Runtime == "" {
		hc.Runtime = defaultRuntime
	}
	if !knownRuntimes[hc.Runtime] {
		return invalidf("unknown or invalid runtime name: %s", hc.Runtime)
	}
	return nil
}

// refuseUnsupported refuses every option of the create request that berthd would otherwise accept and
// silently drop: an option it does not honour is an error naming the option. Networking fields (other than
// links), SecurityOpt and LogConfig are checked by their own owners.
func refuseUnsupported(hc *ctypes.HostConfig) error {
	type opt struct {
		set  bool
		name string
	}
	r := hc.Resources
	forceRRO := false
	for _, m := range hc.Mounts {
		if m.BindOptions != nil && m.BindOptions.ReadOnlyForceRecursive {
			forceRRO = true
		}
	}
	for _, o := range []opt{
		{forceRRO, "--mount bind-recursive=readonly (BindOptions.ReadOnlyForceRecursive)"},
		{len(hc.Links) > 0, "--link (HostConfig.Links)"},
		{len(hc.DeviceRequests) > 0, "--gpus (HostConfig.DeviceRequests)"},
		{len(hc.StorageOpt) > 0, "--storage-opt (HostConfig.StorageOpt)"},
		{hc.UsernsMode != "" && hc.UsernsMode != "host", "--userns (HostConfig.UsernsMode)"},
		{hc.Cgroup != "", "HostConfig.Cgroup"},
		{hc.Isolation != "" && hc.Isolation != "default", "--isolation (HostConfig.Isolation)"},
		{r.BlkioWeight != 0, "--blkio-weight (HostConfig.BlkioWeight)"},
		{len(r.BlkioWeightDevice) > 0, "--blkio-weight-device (HostConfig.BlkioWeightDevice)"},
		{len(r.BlkioDeviceReadBps) > 0, "--device-read-bps (HostConfig.BlkioDeviceReadBps)"},
		{len(r.BlkioDeviceWriteBps) > 0, "--device-write-bps (HostConfig.BlkioDeviceWriteBps)"},
		{len(r.BlkioDeviceReadIOps) > 0, "--device-read-iops (HostConfig.BlkioDeviceReadIOps)"},
		{len(r.BlkioDeviceWriteIOps) > 0, "--device-write-iops (HostConfig.BlkioDeviceWriteIOps)"},
		{r.CPURealtimePeriod != 0, "--cpu-rt-period (HostConfig.CpuRealtimePeriod)"},
		{r.CPURealtimeRuntime != 0, "--cpu-rt-runtime (HostConfig.CpuRealtimeRuntime)"},
		{r.KernelMemory != 0, "--kernel-memory (HostConfig.KernelMemory)"},
		{r.KernelMemoryTCP != 0, "HostConfig.KernelMemoryTCP"},
		{r.MemorySwappiness != nil && *r.MemorySwappiness != -1, "--memory-swappiness (HostConfig.MemorySwappiness)"},
		{r.OomKillDisable != nil && *r.OomKillDisable, "--oom-kill-disable (HostConfig.OomKillDisable)"},
		{r.CPUCount != 0, "--cpu-count (HostConfig.CpuCount)"},
		{r.CPUPercent != 0, "--cpu-percent (HostConfig.CpuPercent)"},
		{r.IOMaximumIOps != 0, "--io-maxiops (HostConfig.IOMaximumIOps)"},
		{r.IOMaximumBandwidth != 0, "--io-maxbandwidth (HostConfig.IOMaximumBandwidth)"},
	} {
		if o.set {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is not supported by berthd", o.name))
		}
	}
	return nil
}

// notFoundAsInvalid turns a NotFound met while creating (a network, a container named by --volumes-from)
// into an invalid argument: at create only a missing image may be a 404, because the CLI answers every 404
// of create with "Unable to find image" and a pull.
func notFoundAsInvalid(err error) error {
	if err != nil && errdefs.IsNotFound(err) {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return err
}

// checkReferences resolves the containers the request names (--link, --pid container:), as dockerd does at
// create: a missing one is a 400.
func (s *lifecycle) checkReferences(hc *ctypes.HostConfig) error {
	for _, l := range hc.Links {
		name, _, _ := strings.Cut(l, ":")
		if _, err := s.get(name); err != nil {
			if errdefs.IsNotFound(err) {
				return invalidf("could not get container for %s: %s", name, err.Error())
			}
			return err
		}
	}
	if ref, ok := strings.CutPrefix(hc.PidMode, "container:"); ok && ref != "" {
		if _, err := s.get(ref); err != nil {
			return notFoundAsInvalid(err)
		}
	}
	return nil
}

func validatePidMode(m string) error {
	switch {
	case m == "", m == "host", m == "private":
		return nil
	case strings.HasPrefix(m, "container:"):
		if strings.TrimPrefix(m, "container:") == "" {
			return invalidf("invalid PID mode: %s", m)
		}
		return nil
	}
	return invalidf("invalid PID mode: %s", m)
}

// validateCgroupns checks --cgroupns and records the default dockerd would: a private cgroup namespace on
// cgroup v2 hosts, the host's on cgroup v1.
func validateCgroupns(hc *ctypes.HostConfig) error {
	switch hc.CgroupnsMode {
	case "":
		hc.CgroupnsMode = "host"
		if cgroupV2() {
			hc.CgroupnsMode = "private"
		}
	case "host", "private":
	default:
		return invalidf("invalid cgroup namespace mode: %s", hc.CgroupnsMode)
	}
	return nil
}

// checkPlatform compares the create request's platform ("os[/arch[/variant]]") with the image's, as
// dockerd does: a mismatch is NotFound (the image wanted is not here), with dockerd's wording.
func checkPlatform(ref, want string, rc *image.RunConfig) error {
	if want == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(want), "/")
	if len(parts) > 3 || parts[0] == "" {
		return invalidf("invalid platform: %s", want)
	}
	goos, arch := parts[0], ""
	if len(parts) > 1 {
		arch = normalizeArch(parts[1])
	}
	haveOS, haveArch := rc.OS, normalizeArch(rc.Arch)
	if haveOS == "" {
		haveOS = "linux"
	}
	if goos == haveOS && (arch == "" || haveArch == "" || arch == haveArch) {
		return nil
	}
	wanted := goos
	if arch != "" {
		wanted += "/" + arch
	}
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf(
		"image with reference %s was found but does not match the specified platform: wanted %s, actual: %s/%s",
		ref, wanted, haveOS, haveArch))
}

func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

func validateDeviceCgroupRules(rules []string) error {
	for _, r := range rules {
		if _, err := oci.ParseDeviceCgroupRule(r); err != nil {
			return err
		}
	}
	return nil
}
