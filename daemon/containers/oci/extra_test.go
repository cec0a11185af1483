package oci

import (
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseDeviceCgroupRule(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		in   string
		want specs.LinuxDeviceCgroup
	}{
		{"c 1:3 rwm", specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"}},
		{"b 8:* r", specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: i(8), Access: "r"}},
		{"a *:* m", specs.LinuxDeviceCgroup{Allow: true, Type: "a", Access: "m"}},
	} {
		got, err := ParseDeviceCgroupRule(tc.in)
		assert.NilError(t, err, tc.in)
		assert.DeepEqual(t, got, tc.want)
	}
	for _, bad := range []string{"", "x 1:3 rwm", "c 1:3", "c 1 rwm", "c 1:3 rwx", "c 1:3 rwmr", "c  1:3 rwm", "c -1:3 r", "c 1:3 r ", "c 99999999999999999999:1 r"} {
		_, err := ParseDeviceCgroupRule(bad)
		assert.Assert(t, errdefs.IsInvalidArgument(err), "%q: %v", bad, err)
		assert.Assert(t, is.ErrorContains(err, "invalid device cgroup rule format"))
	}
}

func FuzzParseDeviceCgroupRule(f *testing.F) {
	f.Add("c 1:3 rwm")
	f.Add("a *:* m")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseDeviceCgroupRule(s)
		if err != nil {
			return
		}
		if r.Type != "a" && r.Type != "b" && r.Type != "c" || r.Access == "" || !r.Allow {
			t.Fatalf("%q parsed to %+v", s, r)
		}
	})
}

func TestExtraInSpec(t *testing.T) {
	s, err := Build(Options{Args: []string{"true"}, Hostname: "h", Domainname: "example.com", Sysctls: map[string]string{"a": "b"},
		Extra: Extra{PIDNSPath: "/proc/1/ns/pid", DeviceCgroupRules: []string{"c 42:* rm"}, MemoryReservation: 1 << 20, CpusetMems: "0"}})
	assert.NilError(t, err)
	assert.Equal(t, s.Linux.Sysctl["kernel.domainname"], "example.com")
	assert.Equal(t, s.Linux.Sysctl["a"], "b")
	found := false
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			assert.Equal(t, ns.Path, "/proc/1/ns/pid")
			found = true
		}
	}
	assert.Assert(t, found)
	last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
	assert.Equal(t, last.Type, "c")
	assert.Equal(t, *last.Major, int64(42))
	assert.Assert(t, last.Minor == nil)
	assert.Equal(t, *s.Linux.Resources.Memory.Reservation, int64(1<<20))
	assert.Equal(t, s.Linux.Resources.CPU.Mems, "0")
}

func TestIpcNoneHasNoShm(t *testing.T) {
	s, err := Build(Options{Args: []string{"true"}, Mounts: []Mount{{Destination: "/data", Type: "bind", Source: "/x"}}, Extra: Extra{NoShm: true}})
	assert.NilError(t, err)
	for _, m := range s.Mounts {
		assert.Assert(t, m.Destination != "/dev/shm")
	}
	assert.Equal(t, s.Mounts[len(s.Mounts)-1].Destination, "/data")
}
