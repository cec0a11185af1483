package containers

import (
	"os"
	"path/filepath"
	"strings"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// deviceAt describes the device node at host path p, to appear at target.
func deviceAt(p, target, perms string) (*oci.Device, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return nil, invalidf("error gathering device information while adding custom device %q: %s", p, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return nil, invalidf("error gathering device information while adding custom device %q: not a device node", p)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return &oci.Device{LinuxDevice: specs.LinuxDevice{
		Path: target, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, Permissions: perms}, nil
}

// hostDevices lists the host's device nodes for a privileged container (pts, shm and mqueue excluded:
// the container has its own).
func hostDevices() []oci.Device {
	var out []oci.Device
	_ = filepath.Walk("/dev", func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if fi.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue":
				return filepath.SkipDir
			}
			return nil
		}
		if fi.Mode()&os.ModeDevice == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		if d, err := deviceAt(p, p, "rwm"); err == nil {
			out = append(out, *d)
		}
		return nil
	})
	return out
}

// devicesFor resolves --device and --privileged.
func devicesFor(hc *ctypes.HostConfig) ([]oci.Device, error) {
	if hc.Privileged {
		return hostDevices(), nil
	}
	var out []oci.Device
	for _, m := range hc.Devices {
		target := m.PathInContainer
		if target == "" {
			target = m.PathOnHost
		}
		perms := m.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return nil, invalidf("invalid device cgroup permissions %q", perms)
		}
		d, err := deviceAt(m.PathOnHost, target, perms)
		if err != nil {
			return nil, err
		}
		out = append(out, *d)
	}
	return out, nil
}

// rlimitsFor turns --ulimit into spec rlimits.
func rlimitsFor(hc *ctypes.HostConfig) []specs.POSIXRlimit {
	var out []specs.POSIXRlimit
	for _, u := range hc.Ulimits {
		if u == nil {
			continue
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Hard: uint64(u.Hard), Soft: uint64(u.Soft)})
	}
	return out
}
