package v2

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/containerd/errdefs"

	types "github.com/berthd/berthd/api/types/plugin"
)

// nopClient stands for the socket client the manager gives an enabled plugin.
type nopClient struct{}

func (nopClient) CallContext(context.Context, string, any, any) error { return nil }

func strp(s string) *string { return &s }

func validConfig() types.Config {
	return types.Config{
		Interface:  types.Interface{Types: []string{"docker.volumedriver/1.0"}, Socket: "p.sock"},
		Entrypoint: []string{"/bin/p"},
		Env:        []types.Env{{Name: "DEBUG", Settable: []string{"value"}, Value: strp("0")}, {Name: "FIXED", Value: strp("x")}},
		Args:       types.Args{Name: "args", Settable: []string{"value"}, Value: []string{"-v"}},
		Mounts: []types.Mount{
			{Name: "state", Settable: []string{"source"}, Source: strp("/var/lib/p"), Destination: "/state", Type: "bind", Options: []string{"rbind"}},
			{Name: "cfg", Destination: "/cfg", Source: strp("/etc/p")},
		},
		Linux: types.Linux{Devices: []types.Device{{Name: "dev", Settable: []string{"path"}}}},
	}
}

func TestParseInterfaceType(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want InterfaceType
		err  bool
	}{
		{in: "docker.volumedriver/1.0", want: InterfaceType{"docker", "volumedriver", "1.0"}},
		{in: "docker.VolumeDriver/1.0", want: InterfaceType{"docker", "volumedriver", "1.0"}},
		{in: "com.example.thing.logdriver/2", want: InterfaceType{"com.example.thing", "logdriver", "2"}},
		{in: "docker.authz/1.0/extra", want: InterfaceType{"docker", "authz", "1.0/extra"}},
		{in: "volumedriver/1.0", err: true},
		{in: "docker.volumedriver", err: true},
		{in: "docker./1.0", err: true},
		{in: "docker.volumedriver/", err: true},
		{in: "", err: true},
	} {
		got, err := ParseInterfaceType(tc.in)
		if tc.err {
			assert.Check(t, err != nil, tc.in)
			continue
		}
		assert.NilError(t, err, tc.in)
		assert.Equal(t, got, tc.want)
		assert.Equal(t, got.String(), strings.Replace(tc.in, "VolumeDriver", "volumedriver", 1))
	}
}

func TestValidateConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*types.Config)
		err    string
	}{
		{name: "valid", modify: func(*types.Config) {}},
		{name: "no types", modify: func(c *types.Config) { c.Interface.Types = nil }, err: "Interface.Types is empty"},
		{name: "bad type", modify: func(c *types.Config) { c.Interface.Types = []string{"nope"} }, err: "not a plugin interface type"},
		{name: "no socket", modify: func(c *types.Config) { c.Interface.Socket = "" }, err: "Interface.Socket is empty"},
		{name: "socket path", modify: func(c *types.Config) { c.Interface.Socket = "../x.sock" }, err: "plain file name"},
		{name: "protocol", modify: func(c *types.Config) { c.Interface.ProtocolScheme = "grpc" }, err: "unsupported protocol"},
		{name: "default protocol", modify: func(c *types.Config) { c.Interface.ProtocolScheme = DefaultProtocolScheme }},
		{name: "no entrypoint", modify: func(c *types.Config) { c.Entrypoint = nil }, err: "Entrypoint is empty"},
		{name: "relative workdir", modify: func(c *types.Config) { c.WorkDir = "x" }, err: "WorkDir"},
		{name: "propagated root", modify: func(c *types.Config) { c.PropagatedMount = "/" }, err: "PropagatedMount"},
		{name: "propagated relative", modify: func(c *types.Config) { c.PropagatedMount = "data" }, err: "PropagatedMount"},
		{name: "env settable path", modify: func(c *types.Config) { c.Env[0].Settable = []string{"path"} }, err: `field "path" is not settable`},
		{name: "mount settable value", modify: func(c *types.Config) { c.Mounts[0].Settable = []string{"value"} }, err: "not settable"},
		{name: "device settable source", modify: func(c *types.Config) { c.Linux.Devices[0].Settable = []string{"source"} }, err: "not settable"},
		{name: "duplicate names", modify: func(c *types.Config) { c.Mounts[0].Name = "DEBUG" }, err: "also used"},
		{name: "name with dot", modify: func(c *types.Config) { c.Env[0].Name = "a.b" }, err: "must not contain"},
		{name: "env without name", modify: func(c *types.Config) { c.Env[0].Name = "" }, err: "without a Name"},
		{name: "mount relative", modify: func(c *types.Config) { c.Mounts[1].Destination = "cfg" }, err: "not absolute"},
		{name: "capability", modify: func(c *types.Config) { c.Linux.Capabilities = []string{"CAP_SYS_ADMIN"} }},
		{name: "bad capability", modify: func(c *types.Config) { c.Linux.Capabilities = []string{"SYS_ADMIN"} }, err: "unknown capability"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			err := ValidateConfig(&c)
			if tc.err == "" {
				assert.NilError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

func TestInitialSettingsAndRecord(t *testing.T) {
	cfg := validConfig()
	p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "docker.io/library/p:latest", cfg, "/root/plugins/x")
	o := p.Object()
	assert.DeepEqual(t, o.Settings.Env, []string{"DEBUG=0", "FIXED=x"})
	assert.DeepEqual(t, o.Settings.Args, []string{"-v"})
	assert.Equal(t, len(o.Settings.Mounts), 2)
	assert.Equal(t, len(o.Settings.Devices), 1)
	assert.Equal(t, p.Rootfs(), "/root/plugins/x/rootfs")
	assert.Equal(t, p.PropagatedMountHost(), "")

	b, err := json.Marshal(p.Record())
	assert.NilError(t, err)
	var raw map[string]json.RawMessage
	assert.NilError(t, json.Unmarshal(b, &raw))
	assert.Check(t, is.Contains(raw, "plugin"))
	assert.Check(t, is.Contains(raw, "Rootfs"))
	var rec Record
	assert.NilError(t, json.Unmarshal(b, &rec))
	q := New(rec, "/moved/x")
	assert.DeepEqual(t, q.Object(), o)
	assert.Equal(t, q.Rootfs(), "/moved/x/rootfs")

	// Settings are never null on the wire.
	empty := NewFromConfig(strings.Repeat("b", 64), "e:latest", "", types.Config{}, "/d")
	b, err = json.Marshal(empty.Object().Settings)
	assert.NilError(t, err)
	assert.Equal(t, string(b), `{"Mounts":[],"Env":[],"Args":[],"Devices":[]}`)
}

func TestApplySettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		err   string
		check func(t *testing.T, s types.Settings)
	}{
		{name: "env", args: []string{"DEBUG=1"}, check: func(t *testing.T, s types.Settings) {
			assert.DeepEqual(t, s.Env, []string{"DEBUG=1", "FIXED=x"})
		}},
		{name: "env explicit field", args: []string{"DEBUG.value=2"}, check: func(t *testing.T, s types.Settings) {
			assert.Equal(t, s.Env[0], "DEBUG=2")
		}},
		{name: "env value with =", args: []string{"DEBUG=a=b"}, check: func(t *testing.T, s types.Settings) {
			assert.Equal(t, s.Env[0], "DEBUG=a=b")
		}},
		{name: "env not settable", args: []string{"FIXED=y"}, err: `"FIXED" is not settable`},
		{name: "unknown", args: []string{"NOPE=1"}, err: `setting "NOPE" not found in the plugin configuration`},
		{name: "no equals", args: []string{"DEBUG"}, err: "invalid key value pair"},
		{name: "args", args: []string{"args=-a  -b c"}, check: func(t *testing.T, s types.Settings) {
			assert.DeepEqual(t, s.Args, []string{"-a", "-b", "c"})
		}},
		{name: "args empty", args: []string{"args="}, check: func(t *testing.T, s types.Settings) {
			assert.DeepEqual(t, s.Args, []string{})
		}},
		{name: "mount source", args: []string{"state.source=/srv"}, check: func(t *testing.T, s types.Settings) {
			assert.Equal(t, *s.Mounts[0].Source, "/srv")
		}},
		{name: "mount default field", args: []string{"state=/srv2"}, check: func(t *testing.T, s types.Settings) {
			assert.Equal(t, *s.Mounts[0].Source, "/srv2")
		}},
		{name: "mount wrong field", args: []string{"state.path=/x"}, err: "is not settable"},
		{name: "mount not settable", args: []string{"cfg.source=/x"}, err: "is not settable"},
		{name: "device path", args: []string{"dev.path=/dev/null"}, check: func(t *testing.T, s types.Settings) {
			assert.Equal(t, *s.Devices[0].Path, "/dev/null")
		}},
		{name: "all or nothing", args: []string{"DEBUG=9", "NOPE=1"}, err: "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", validConfig(), "/d")
			before := p.Object().Settings
			err := p.Set(tc.args)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				assert.DeepEqual(t, p.Object().Settings, before)
				return
			}
			assert.NilError(t, err)
			tc.check(t, p.Object().Settings)
		})
	}
}

func TestSetRefusedWhileEnabled(t *testing.T) {
	p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", validConfig(), "/d")
	p.SetEnabled(true, nopClient{})
	assert.Equal(t, p.Set([]string{"DEBUG=1"}), ErrActive)
	p.SetEnabled(false, nil)
	assert.NilError(t, p.Set([]string{"DEBUG=1"}))
}

func TestDisabledClientUnavailable(t *testing.T) {
	p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", validConfig(), "/d")
	err := p.Client().CallContext(context.Background(), "VolumeDriver.Get", nil, nil)
	assert.Check(t, errdefs.IsUnavailable(err), err)
	p.SetEnabled(true, nopClient{})
	assert.NilError(t, p.Client().CallContext(context.Background(), "VolumeDriver.Get", nil, nil))
	p.SetEnabled(false, nil)
	err = p.Client().CallContext(context.Background(), "VolumeDriver.Get", nil, nil)
	assert.Check(t, errdefs.IsUnavailable(err), err)
}

func TestScopedPath(t *testing.T) {
	cfg := validConfig()
	cfg.PropagatedMount = "/data"
	p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", cfg, "/r/p")
	for in, want := range map[string]string{
		"/data":            "/r/p/propagated-mount",
		"/data/volumes/v1": "/r/p/propagated-mount/volumes/v1",
		"/database/x":      "/r/p/rootfs/database/x",
		"/other/v":         "/r/p/rootfs/other/v",
		"/data/../../etc":  "/r/p/rootfs/etc",
		"relative":         "/r/p/rootfs/relative",
	} {
		assert.Equal(t, p.ScopedPath(in), want, in)
	}
	noPM := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", validConfig(), "/r/p")
	assert.Equal(t, noPM.ScopedPath("/data/v"), "/r/p/rootfs/data/v")
}

func TestCapabilitiesAndPrivileges(t *testing.T) {
	cfg := validConfig()
	cfg.Interface.Types = []string{"docker.volumedriver/1.0", "docker.authz/1.0", "other.logdriver/1.0"}
	cfg.Network.Type = "host"
	cfg.PidHost = true
	cfg.Linux.Capabilities = []string{"CAP_SYS_ADMIN"}
	cfg.Linux.Devices[0].Path = strp("/dev/fuse")
	p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", cfg, "/d")
	assert.DeepEqual(t, p.Capabilities(), []string{"volumedriver", "authz"})
	assert.Check(t, p.HasCapability("VolumeDriver"))
	assert.Check(t, !p.HasCapability("logdriver"))

	var names []string
	for _, pr := range Privileges(cfg) {
		names = append(names, pr.Name)
	}
	assert.DeepEqual(t, names, []string{"capabilities", "device", "host pid namespace", "mount", "mount", "network"})
	assert.Equal(t, len(Privileges(types.Config{Network: types.Network{Type: "bridge"}})), 0)
}

func TestRefCount(t *testing.T) {
	p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", validConfig(), "/d")
	assert.Assert(t, !p.Acquire(), "a disabled plugin takes no reference")
	p.SetEnabled(true, nil)
	assert.Assert(t, p.Acquire())
	assert.Assert(t, p.Acquire())
	assert.Equal(t, p.RefCount(), 2)
	n, ok := p.BeginDisable(false)
	assert.Assert(t, !ok)
	assert.Equal(t, n, 2)
	p.Release()
	p.Release()
	p.Release()
	assert.Equal(t, p.RefCount(), 0)

	_, ok = p.BeginDisable(false)
	assert.Assert(t, ok)
	assert.Assert(t, !p.Acquire(), "no reference while being disabled")
	p.EndDisable()
	assert.Assert(t, p.Acquire(), "a failed disable leaves the plugin usable")
}

func mountAt(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func hasNS(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == typ {
			return true
		}
	}
	return false
}

func TestBuildSpec(t *testing.T) {
	opts := SpecOptions{
		SocketDir: "/run/berth/plugins/abc", CgroupsPath: "/berth-plugins/x",
		Device: func(path string) (specs.LinuxDevice, error) {
			return specs.LinuxDevice{Path: path, Type: "c", Major: 10, Minor: 229}, nil
		},
	}
	for _, tc := range []struct {
		name   string
		modify func(*types.Plugin)
		opts   *SpecOptions
		err    string
		check  func(t *testing.T, s *specs.Spec)
	}{
		{name: "defaults", check: func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, s.Root.Path, "/r/p/rootfs")
			assert.Check(t, !s.Root.Readonly)
			assert.Equal(t, s.Linux.CgroupsPath, "/berth-plugins/x")
			m := mountAt(s, "/run/docker/plugins")
			assert.Assert(t, m != nil)
			assert.Equal(t, m.Source, "/run/berth/plugins/abc")
			assert.DeepEqual(t, m.Options, []string{"rbind", "rshared"})
			assert.DeepEqual(t, s.Process.Args, []string{"/bin/p", "-v"})
			assert.DeepEqual(t, s.Process.Env, []string{defaultPath, "DEBUG=0", "FIXED=x"})
			assert.Equal(t, s.Process.Cwd, "/")
			assert.Check(t, hasNS(s, specs.NetworkNamespace) && hasNS(s, specs.PIDNamespace) && hasNS(s, specs.IPCNamespace))
			assert.Check(t, mountAt(s, "/etc/hosts") == nil)
			assert.Check(t, mountAt(s, "/proc") != nil)
			assert.Equal(t, s.Linux.RootfsPropagation, "")
			st := mountAt(s, "/state")
			assert.Assert(t, st != nil)
			assert.Equal(t, st.Source, "/var/lib/p")
			assert.Equal(t, len(s.Linux.Devices), 0)
			assert.DeepEqual(t, s.Process.Capabilities.Bounding, DefaultCapabilities)
		}},
		{name: "settings", modify: func(p *types.Plugin) {
			assert.NilError(t, ApplySettings(p.Config, &p.Settings, []string{"DEBUG=1", "args=-x -y", "state.source=/srv", "dev.path=/dev/fuse"}))
		}, check: func(t *testing.T, s *specs.Spec) {
			assert.DeepEqual(t, s.Process.Args, []string{"/bin/p", "-x", "-y"})
			assert.DeepEqual(t, s.Process.Env, []string{defaultPath, "DEBUG=1", "FIXED=x"})
			assert.Equal(t, mountAt(s, "/state").Source, "/srv")
			assert.Equal(t, len(s.Linux.Devices), 1)
			assert.Equal(t, s.Linux.Devices[0].Path, "/dev/fuse")
			last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
			assert.Check(t, last.Allow && *last.Major == 10 && *last.Minor == 229 && last.Access == "rwm")
		}},
		{name: "propagated mount", modify: func(p *types.Plugin) { p.Config.PropagatedMount = "/data/" }, check: func(t *testing.T, s *specs.Spec) {
			m := mountAt(s, "/data")
			assert.Assert(t, m != nil)
			assert.Equal(t, m.Source, "/r/p/propagated-mount")
			assert.DeepEqual(t, m.Options, []string{"rbind", "rw", "rshared"})
			assert.Equal(t, s.Linux.RootfsPropagation, "rshared")
		}},
		{name: "host network", modify: func(p *types.Plugin) { p.Config.Network.Type = "host" }, check: func(t *testing.T, s *specs.Spec) {
			assert.Check(t, !hasNS(s, specs.NetworkNamespace))
			assert.Check(t, mountAt(s, "/etc/hosts") != nil)
			assert.Check(t, mountAt(s, "/etc/resolv.conf") != nil)
		}},
		{name: "bridge network", modify: func(p *types.Plugin) { p.Config.Network.Type = "bridge" }, check: func(t *testing.T, s *specs.Spec) {
			assert.Check(t, hasNS(s, specs.NetworkNamespace))
			assert.Check(t, mountAt(s, "/etc/resolv.conf") != nil)
		}},
		{name: "host pid ipc", modify: func(p *types.Plugin) { p.Config.PidHost, p.Config.IpcHost = true, true }, check: func(t *testing.T, s *specs.Spec) {
			assert.Check(t, !hasNS(s, specs.PIDNamespace))
			assert.Check(t, !hasNS(s, specs.IPCNamespace))
			assert.Check(t, hasNS(s, specs.MountNamespace))
		}},
		{name: "capabilities and workdir", modify: func(p *types.Plugin) {
			p.Config.Linux.Capabilities = []string{"CAP_SYS_ADMIN", "CAP_CHOWN"}
			p.Config.WorkDir = "/work"
		}, check: func(t *testing.T, s *specs.Spec) {
			assert.Check(t, is.Contains(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN"))
			assert.Equal(t, len(s.Process.Capabilities.Bounding), len(DefaultCapabilities)+1)
			assert.Equal(t, s.Process.Cwd, "/work")
		}},
		{name: "manifest mount replaces default", modify: func(p *types.Plugin) {
			p.Config.Mounts = append(p.Config.Mounts, types.Mount{Destination: "/dev/shm", Type: "bind", Source: strp("/dev/shm")})
		}, check: func(t *testing.T, s *specs.Spec) {
			n := 0
			for _, m := range s.Mounts {
				if m.Destination == "/dev/shm" {
					n++
					assert.Equal(t, m.Type, "bind")
				}
			}
			assert.Equal(t, n, 1)
		}},
		{name: "all devices", modify: func(p *types.Plugin) { p.Config.Linux.AllowAllDevices = true }, check: func(t *testing.T, s *specs.Spec) {
			assert.Equal(t, len(s.Linux.Resources.Devices), 1)
			assert.Check(t, s.Linux.Resources.Devices[0].Allow)
		}},
		{name: "mount without source", modify: func(p *types.Plugin) {
			p.Config.Mounts[0].Source = nil
			p.Settings.Mounts[0].Source = nil
		}, err: "mount source is not specified"},
		{name: "no socket dir", opts: &SpecOptions{}, err: "no socket directory"},
		{name: "empty entrypoint", modify: func(p *types.Plugin) { p.Config.Entrypoint = nil }, err: "empty entrypoint"},
		{name: "device without resolver", modify: func(p *types.Plugin) {
			p.Settings.Devices[0].Path = strp("/dev/fuse")
		}, opts: &SpecOptions{SocketDir: "/s"}, err: "cannot resolve device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", validConfig(), "/r/p").Object()
			if tc.modify != nil {
				tc.modify(&obj)
			}
			o := opts
			if tc.opts != nil {
				o = *tc.opts
			}
			pm := ""
			if obj.Config.PropagatedMount != "" {
				pm = "/r/p/propagated-mount"
			}
			s, err := BuildSpec(obj, "/r/p/rootfs", pm, o)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			tc.check(t, s)
		})
	}
}
