package oci

import (
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == t {
			return true
		}
	}
	return false
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestBuild(t *testing.T) {
	base := Options{Args: []string{"sh"}, Env: []string{"A=1"}, Hostname: "h"}
	tests := []struct {
		name  string
		mod   func(o *Options)
		check func(t *testing.T, s *specs.Spec)
		err   string
	}{
		{"defaults", nil, func(t *testing.T, s *specs.Spec) {
			assert.DeepEqual(t, s.Process.Args, []string{"sh"})
			assert.Equal(t, s.Process.Cwd, "/")
			assert.DeepEqual(t, s.Process.Capabilities.Bounding, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"})
			assert.Assert(t, hasNS(s, specs.NetworkNamespace) && hasNS(s, specs.PIDNamespace) && hasNS(s, specs.UTSNamespace))
			assert.Equal(t, s.Hostname, "h")
			assert.DeepEqual(t, s.Linux.MaskedPaths, DefaultMaskedPaths)
			assert.DeepEqual(t, s.Linux.ReadonlyPaths, DefaultReadonlyPaths)
			assert.Assert(t, is.Contains(mountAt(s, "/dev/shm").Options, "size=67108864"))
			assert.Assert(t, is.Contains(mountAt(s, "/sys").Options, "ro"))
			assert.Assert(t, !s.Root.Readonly)
			assert.Assert(t, s.Linux.Resources.Memory == nil && s.Linux.Resources.Pids == nil)
		}, ""},
		{"host network shares netns and hostname", func(o *Options) { o.HostNetwork = true }, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, !hasNS(s, specs.NetworkNamespace))
			assert.Assert(t, !hasNS(s, specs.UTSNamespace))
			assert.Equal(t, s.Hostname, "")
		}, ""},
		{"user and cwd", func(o *Options) {
			o.User = User{UID: 1000, GID: 100, AdditionalGids: []uint32{10}}
			o.Cwd = "/tmp/"
		}, func(t *testing.T, s *specs.Spec) {
			assert.DeepEqual(t, s.Process.User, specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{10}})
			assert.Equal(t, s.Process.Cwd, "/tmp")
		}, ""},
		{"relative cwd", func(o *Options) { o.Cwd = "tmp" }, nil, "needs to be an absolute path"},
		{"no args", func(o *Options) { o.Args = nil }, nil, "no command specified"},
		{"caps add and drop", func(o *Options) {
			o.CapAdd = []string{"net_admin", "CAP_SYS_TIME"}
			o.CapDrop = []string{"chown"}
		}, func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities.Effective
			assert.Assert(t, is.Contains(c, "CAP_NET_ADMIN"))
			assert.Assert(t, is.Contains(c, "CAP_SYS_TIME"))
			for _, x := range c {
				assert.Assert(t, x != "CAP_CHOWN")
			}
		}, ""},
		{"drop all add one", func(o *Options) { o.CapDrop = []string{"ALL"}; o.CapAdd = []string{"KILL"} }, func(t *testing.T, s *specs.Spec) {
			assert.DeepEqual(t, s.Process.Capabilities.Bounding, []string{"CAP_KILL"})
		}, ""},
		{"unknown cap", func(o *Options) { o.CapAdd = []string{"FLY"} }, nil, `unknown capability: "CAP_FLY"`},
		{"privileged", func(o *Options) { o.Privileged = true; o.LastCap = 37 }, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, len(s.Process.Capabilities.Bounding), 38)
			assert.Assert(t, s.Linux.MaskedPaths == nil && s.Linux.ReadonlyPaths == nil)
			assert.Assert(t, !is.Contains(mountAt(s, "/sys").Options, "ro")().Success())
			assert.Equal(t, len(s.Linux.Resources.Devices), 1)
			assert.Assert(t, s.Linux.Resources.Devices[0].Allow)
		}, ""},
		{"readonly rootfs", func(o *Options) { o.ReadonlyRootfs = true }, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, s.Root.Readonly)
		}, ""},
		{"limits", func(o *Options) {
			o.Memory = 64 << 20
			o.NanoCPUs = 1500000000
			o.PidsLimit = 10
			o.CPUShares = 512
		}, func(t *testing.T, s *specs.Spec) {
			r := s.Linux.Resources
			assert.Equal(t, *r.Memory.Limit, int64(64<<20))
			assert.Equal(t, *r.Memory.Swap, int64(128<<20))
			assert.Equal(t, *r.CPU.Period, uint64(100000))
			assert.Equal(t, *r.CPU.Quota, int64(150000))
			assert.Equal(t, *r.CPU.Shares, uint64(512))
			assert.Equal(t, r.Pids.Limit, int64(10))
		}, ""},
		{"user mounts replace defaults and sort by depth", func(o *Options) {
			o.Mounts = []Mount{
				{Destination: "/data/sub", Type: "bind", Source: "/b", Options: []string{"rbind"}},
				{Destination: "/data", Type: "bind", Source: "/a", Options: []string{"rbind"}},
				{Destination: "/dev/shm", Type: "bind", Source: "/s", Options: []string{"rbind"}},
			}
			o.Tmpfs = map[string]string{"/run": "size=1m"}
		}, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, mountAt(s, "/dev/shm").Source, "/s")
			var order []string
			for _, m := range s.Mounts {
				order = append(order, m.Destination)
			}
			idx := func(d string) int {
				for i, x := range order {
					if x == d {
						return i
					}
				}
				return -1
			}
			assert.Assert(t, idx("/data") < idx("/data/sub"))
			assert.Assert(t, is.Contains(mountAt(s, "/run").Options, "size=1m"))
		}, ""},
		{"relative mount destination", func(o *Options) { o.Mounts = []Mount{{Destination: "data", Type: "bind", Source: "/a"}} }, nil, "not an absolute path"},
		{"init", func(o *Options) { o.InitPath = "/usr/bin/tini-static" }, func(t *testing.T, s *specs.Spec) {
			assert.DeepEqual(t, s.Process.Args, []string{InitTarget, "--", "sh"})
			m := mountAt(s, InitTarget)
			assert.Assert(t, m != nil)
			assert.Equal(t, m.Source, "/usr/bin/tini-static")
		}, ""},
		{"devices and rlimits", func(o *Options) {
			o.Devices = []Device{{LinuxDevice: specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}, Permissions: "rw"}}
			o.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 200, Soft: 100}}
		}, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, s.Linux.Devices[0].Path, "/dev/fuse")
			last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
			assert.Assert(t, last.Allow && *last.Major == 10 && *last.Minor == 229 && last.Access == "rw")
			assert.Equal(t, s.Process.Rlimits[0].Soft, uint64(100))
		}, ""},
		{"masked paths override", func(o *Options) { o.MaskedPaths = []string{} }, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, len(s.Linux.MaskedPaths), 0)
		}, ""},
		{"shm size and host ipc", func(o *Options) { o.ShmSize = 1 << 20; o.HostIPC = true }, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, mountAt(s, "/dev/shm").Type, "bind")
			assert.Equal(t, mountAt(s, "/dev/mqueue").Type, "mqueue")
			assert.Assert(t, !hasNS(s, specs.IPCNamespace))
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.mod != nil {
				tc.mod(&o)
			}
			s, err := Build(o)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				assert.Assert(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			tc.check(t, s)
		})
	}
}
