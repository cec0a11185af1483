package containers

import (
	"testing"

	ctypes "github.com/berthd/berthd/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The systemd cgroup paths are checked against what runc's systemd driver does (recorded from a cgroup v2
// host with systemd: cgroupsPath "system.slice:berth:<id>" became /sys/fs/cgroup/system.slice/
// berth-<id>.scope; "user-1000.slice" nests in user.slice). This machine is cgroup v1 without systemd,
// so the end-to-end path cannot run here.
func TestCgroupPaths(t *testing.T) {
	for _, tc := range []struct {
		systemd           bool
		parent, def, path string
		dir               string
	}{
		{false, "", "/berth", "/berth/abc", "/berth/abc"},
		{false, "/custom", "/berth", "/custom/abc", "/custom/abc"},
		{true, "", "/berth", "system.slice:berth:abc", "/system.slice/berth-abc.scope"},
		{true, "", "", "system.slice:berth:abc", "/system.slice/berth-abc.scope"},
		{true, "user-1000.slice", "/berth", "user-1000.slice:berth:abc", "/user.slice/user-1000.slice/berth-abc.scope"},
		{true, "a-b-c.slice", "", "a-b-c.slice:berth:abc", "/a.slice/a-b.slice/a-b-c.slice/berth-abc.scope"},
		{true, "-.slice", "", "-.slice:berth:abc", "/berth-abc.scope"},
	} {
		assert.Check(t, is.Equal(CgroupsPath(tc.systemd, tc.parent, tc.def, "abc"), tc.path))
		assert.Check(t, is.Equal(CgroupDir(tc.systemd, tc.parent, tc.def, "abc"), tc.dir))
	}
}

func TestApplyDefaults(t *testing.T) {
	s := &Service{cfg: &Config{Defaults: Defaults{
		LogDriver: "json-file", LogOpts: map[string]string{"max-size": "10m", "max-file": "3"},
		ShmSize: 1 << 20, CgroupnsMode: "private",
		Ulimits: map[string]*ctypes.Ulimit{"nofile": {Name: "nofile", Soft: 1, Hard: 2}, "nproc": {Name: "nproc", Soft: 3, Hard: 4}},
	}}}
	hc := &ctypes.HostConfig{LogConfig: ctypes.LogConfig{Config: map[string]string{"max-file": "5"}}}
	s.cfg.Defaults.apply(hc)
	assert.Check(t, is.Equal(hc.LogConfig.Type, "json-file"))
	assert.Check(t, is.DeepEqual(hc.LogConfig.Config, map[string]string{"max-size": "10m", "max-file": "5"}), "the container's own option wins")
	assert.Check(t, is.Equal(hc.ShmSize, int64(1<<20)))
	assert.Check(t, is.Equal(hc.CgroupnsMode, "private"))

	hc = &ctypes.HostConfig{LogConfig: ctypes.LogConfig{Type: "local"}, ShmSize: 5}
	s.cfg.Defaults.apply(hc)
	assert.Check(t, is.Len(hc.LogConfig.Config, 0), "the daemon's options are for the daemon's driver only")
	assert.Check(t, is.Equal(hc.ShmSize, int64(5)))

	hc = &ctypes.HostConfig{Resources: ctypes.Resources{Ulimits: []*ctypes.Ulimit{{Name: "nofile", Soft: 7, Hard: 8}}}}
	rl := s.cfg.Defaults.rlimits(hc)
	assert.Assert(t, is.Len(rl, 2))
	assert.Check(t, is.Equal(rl[0].Type, "RLIMIT_NOFILE"))
	assert.Check(t, is.Equal(rl[0].Soft, uint64(7)), "the container's own ulimit wins")
	assert.Check(t, is.Equal(rl[1].Type, "RLIMIT_NPROC"))
}
