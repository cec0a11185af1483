package oci

import (
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestParseSecurityOpt(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		opts []string
		host HostSecurity
		want SecurityOpts
		err  string
	}{
		{opts: nil},
		{opts: []string{"no-new-privileges"}, want: SecurityOpts{NoNewPrivileges: &yes}},
		{opts: []string{"no-new-privileges=false"}, want: SecurityOpts{NoNewPrivileges: &no}},
		{opts: []string{"no-new-privileges:true"}, want: SecurityOpts{NoNewPrivileges: &yes}},
		{opts: []string{"no-new-privileges=maybe"}, err: `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{opts: []string{"seccomp=unconfined"}, want: SecurityOpts{Seccomp: "unconfined"}},
		{opts: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}, want: SecurityOpts{Seccomp: `{"defaultAction":"SCMP_ACT_ALLOW"}`}},
		{opts: []string{`seccomp={bad`}, err: "Decoding seccomp profile failed"},
		{opts: []string{`seccomp=`}, err: `invalid --security-opt 2: "seccomp="`},
		{opts: []string{"apparmor=unconfined"}},
		{opts: []string{"apparmor=docker-default"}, err: `invalid --security-opt "apparmor=docker-default": AppArmor is not enabled on this host`},
		{opts: []string{"apparmor=p1"}, host: HostSecurity{AppArmor: true}, want: SecurityOpts{AppArmor: "p1"}},
		{opts: []string{"label=disable"}},
		{opts: []string{"label:disable"}},
		{opts: []string{"disable"}},
		{opts: []string{"label=user:foo"}, err: `invalid --security-opt "label=user:foo": SELinux is not enabled`},
		{opts: []string{"systempaths=unconfined"}, want: SecurityOpts{UnconfinedSystemPaths: true}},
		{opts: []string{"systempaths=foo"}, err: `invalid --security-opt 2: "systempaths=foo"`},
		{opts: []string{"writable-cgroups=true"}, want: SecurityOpts{WritableCgroups: &yes}},
		{opts: []string{"writable-cgroups=x"}, err: `invalid --security-opt 2: "writable-cgroups=x"`},
		{opts: []string{"foo=bar"}, err: `invalid --security-opt 2: "foo=bar"`},
		{opts: []string{"foo"}, err: `invalid --security-opt 1: "foo"`},
	}
	for _, tc := range tests {
		got, err := ParseSecurityOpt(tc.opts, tc.host)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, "%v", tc.opts)
			assert.Assert(t, errdefs.IsInvalidArgument(err), "%v", tc.opts)
			continue
		}
		assert.NilError(t, err, "%v", tc.opts)
		assert.DeepEqual(t, got, tc.want)
	}
}

func hasSyscallRule(s *specs.Spec, name string, action specs.LinuxSeccompAction) bool {
	for _, r := range s.Linux.Seccomp.Syscalls {
		if r.Action != action {
			continue
		}
		for _, n := range r.Names {
			if n == name {
				return true
			}
		}
	}
	return false
}

func TestBuildSecurity(t *testing.T) {
	base := Options{Args: []string{"sh"}}
	yes, no := true, false
	tests := []struct {
		name  string
		mod   func(o *Options)
		check func(t *testing.T, s *specs.Spec)
	}{
		{"default profile, no nnp, ro cgroup", nil, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, s.Linux.Seccomp != nil)
			assert.Equal(t, s.Linux.Seccomp.DefaultAction, specs.ActErrno)
			assert.Assert(t, hasSyscallRule(s, "read", specs.ActAllow))
			// mount is allowed only with CAP_SYS_ADMIN, which the default set lacks.
			assert.Assert(t, !hasSyscallRule(s, "mount", specs.ActAllow))
			assert.Assert(t, !s.Process.NoNewPrivileges)
			assert.Equal(t, mountAt(s, "/sys/fs/cgroup").Options[0], "ro")
		}},
		{"capability-dependent rules follow cap-add", func(o *Options) { o.CapAdd = []string{"SYS_ADMIN"} }, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, hasSyscallRule(s, "mount", specs.ActAllow))
		}},
		{"privileged: no seccomp, no paths, rw cgroup, all caps", func(o *Options) { o.Privileged = true }, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, s.Linux.Seccomp == nil)
			assert.Assert(t, s.Linux.MaskedPaths == nil && s.Linux.ReadonlyPaths == nil)
			assert.Equal(t, mountAt(s, "/sys/fs/cgroup").Options[0], "rw")
			assert.Equal(t, len(s.Process.Capabilities.Bounding), len(allCapabilities))
		}},
		{"privileged keeps no_new_privs when asked", func(o *Options) {
			o.Privileged = true
			o.Security.NoNewPrivileges = true
		}, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, s.Process.NoNewPrivileges)
		}},
		{"unconfined", func(o *Options) { o.Security.Seccomp = SeccompUnconfined }, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, s.Linux.Seccomp == nil)
		}},
		{"custom profile", func(o *Options) {
			o.Security.Seccomp = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`
		}, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, s.Linux.Seccomp.DefaultAction, specs.ActAllow)
			assert.Assert(t, hasSyscallRule(s, "mkdirat", specs.ActErrno))
		}},
		{"no-new-privileges", func(o *Options) { o.Security.NoNewPrivileges = true }, func(t *testing.T, s *specs.Spec) {
			assert.Assert(t, s.Process.NoNewPrivileges)
		}},
		{"writable cgroups", func(o *Options) { o.Security.WritableCgroups = &yes }, func(t *testing.T, s *specs.Spec) {
			m := mountAt(s, "/sys/fs/cgroup")
			assert.Equal(t, m.Options[0], "rw")
			assert.Assert(t, !is.Contains(m.Options, "ro")().Success())
		}},
		{"privileged with writable-cgroups=false", func(o *Options) {
			o.Privileged = true
			o.Security.WritableCgroups = &no
		}, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, mountAt(s, "/sys/fs/cgroup").Options[0], "ro")
		}},
		{"apparmor profile passed through", func(o *Options) { o.Security.AppArmor = "p1" }, func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, s.Process.ApparmorProfile, "p1")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.mod != nil {
				tc.mod(&o)
			}
			s, err := Build(o)
			assert.NilError(t, err)
			tc.check(t, s)
		})
	}
}

func TestCapabilitiesAddAllDrop(t *testing.T) {
	caps, err := Capabilities(false, []string{"ALL"}, []string{"net_admin", "CAP_SYS_ADMIN"}, 40, 0)
	assert.NilError(t, err)
	assert.Equal(t, len(caps), len(allCapabilities)-2)
	assert.Assert(t, !is.Contains(caps, "CAP_NET_ADMIN")().Success())
	assert.Assert(t, !is.Contains(caps, "CAP_SYS_ADMIN")().Success())

	caps, err = Capabilities(false, []string{"chown", "CAP_NET_ADMIN"}, []string{"ALL"}, 40, 0)
	assert.NilError(t, err)
	assert.DeepEqual(t, caps, []string{"CAP_CHOWN", "CAP_NET_ADMIN"})

	_, err = Capabilities(false, []string{"CAP_FOO"}, nil, 40, 0)
	assert.ErrorContains(t, err, `unknown capability: "CAP_FOO"`)
}

func FuzzParseSecurityOpt(f *testing.F) {
	for _, s := range []string{"no-new-privileges", "seccomp=unconfined", `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, "label=disable", "apparmor=x", "a:b", "systempaths=unconfined"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, opt string) {
		_, err := ParseSecurityOpt([]string{opt}, HostSecurity{})
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Fatalf("%q: unclassified error %v", opt, err)
		}
	})
}
