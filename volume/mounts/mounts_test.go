package mounts

import (
	"testing"

	"github.com/berthd/berthd/api/types/container"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func TestParseBind(t *testing.T) {
	tests := []struct {
		spec, driver string
		want         MountPoint
		err          string
	}{
		{spec: "vol:/d", want: MountPoint{Type: "volume", Name: "vol", Destination: "/d", RW: true, CopyData: true}},
		{spec: "vol:/d:ro", driver: "p", want: MountPoint{Type: "volume", Name: "vol", Driver: "p", Destination: "/d", Mode: "ro", CopyData: true}},
		{spec: "vol:/d:nocopy", want: MountPoint{Type: "volume", Name: "vol", Destination: "/d", RW: true, Mode: "nocopy"}},
		{spec: "/d", driver: "p", want: MountPoint{Type: "volume", Destination: "/d", RW: true, Driver: "p", Anonymous: true, CopyData: true}},
		{spec: "/host/dir/:/d/", want: MountPoint{Type: "bind", Source: "/host/dir", Destination: "/d", RW: true, Propagation: "rprivate"}},
		{spec: "/h:/d:ro,rshared", want: MountPoint{Type: "bind", Source: "/h", Destination: "/d", Mode: "ro,rshared", Propagation: "rshared"}},
		{spec: "/h:/d:z", want: MountPoint{Type: "bind", Source: "/h", Destination: "/d", RW: true, Mode: "z", Propagation: "rprivate"}},
		{spec: "vol:d", err: "mount path must be absolute"},
		{spec: "vol:/", err: "destination can't be '/'"},
		{spec: "/h:/d:xx", err: "invalid mode: xx"},
		{spec: "/h:/d:ro,rw", err: "invalid mode: ro,rw"},
		{spec: "vol:/d:rshared", err: "invalid mode: rshared"},
		{spec: "a:b:c:d", err: "invalid volume specification: 'a:b:c:d'"},
		{spec: ":/d", err: "invalid volume specification"},
		{spec: "bad name:/d", err: "includes invalid characters for a local volume name"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			mp, err := ParseBind(tc.spec, tc.driver)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				assert.Assert(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, *mp, tc.want)
		})
	}
}

func TestParseMount(t *testing.T) {
	tests := []struct {
		name string
		m    container.Mount
		want func(*MountPoint) bool
		err  string
	}{
		{name: "bind", m: container.Mount{Type: "bind", Source: "/h", Target: "/d", ReadOnly: true},
			want: func(mp *MountPoint) bool { return mp.Source == "/h" && !mp.RW && mp.Propagation == "rprivate" }},
		{name: "bind propagation", m: container.Mount{Type: "bind", Source: "/h", Target: "/d", BindOptions: &container.BindOptions{Propagation: "rslave"}},
			want: func(mp *MountPoint) bool { return mp.Propagation == "rslave" }},
		{name: "bind no source", m: container.Mount{Type: "bind", Target: "/d"}, err: `invalid mount config for type "bind": field Source must not be empty`},
		{name: "bind relative source", m: container.Mount{Type: "bind", Source: "h", Target: "/d"}, err: "must be absolute"},
		{name: "bind with volume options", m: container.Mount{Type: "bind", Source: "/h", Target: "/d", VolumeOptions: &container.VolumeOptions{}}, err: "field VolumeOptions must not be specified"},
		{name: "volume named", m: container.Mount{Type: "volume", Source: "v", Target: "/d", VolumeOptions: &container.VolumeOptions{NoCopy: true, DriverConfig: &container.Driver{Name: "p"}}},
			want: func(mp *MountPoint) bool { return mp.Name == "v" && mp.Driver == "p" && !mp.CopyData && !mp.Anonymous }},
		{name: "volume anonymous", m: container.Mount{Type: "volume", Target: "/d"},
			want: func(mp *MountPoint) bool { return mp.Anonymous && mp.CopyData }},
		{name: "volume with bind options", m: container.Mount{Type: "volume", Target: "/d", BindOptions: &container.BindOptions{}}, err: "field BindOptions must not be specified"},
		{name: "tmpfs", m: container.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &container.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o700}},
			want: func(mp *MountPoint) bool {
				o := mp.TmpfsOptions()
				return o[len(o)-2] == "size=1024k" && o[len(o)-1] == "mode=700"
			}},
		{name: "tmpfs with source", m: container.Mount{Type: "tmpfs", Source: "x", Target: "/t"}, err: "field Source must not be specified"},
		{name: "no target", m: container.Mount{Type: "volume"}, err: "field Target must not be empty"},
		{name: "no type", m: container.Mount{Target: "/d"}, err: "mount type unspecified"},
		{name: "bad type", m: container.Mount{Type: "npipe", Target: "/d"}, err: `mount type unknown: "npipe"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mp, err := ParseMount(tc.m)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				assert.Assert(t, errdefs.IsInvalidArgument(err))
				return
			}
			assert.NilError(t, err)
			assert.Assert(t, tc.want(mp), "%+v", mp)
		})
	}
}

func TestVolumesFromAndOptions(t *testing.T) {
	id, mode, err := ParseVolumesFrom("c1:ro")
	assert.NilError(t, err)
	assert.Equal(t, id+" "+mode, "c1 ro")
	_, _, err = ParseVolumesFrom("c1:xx")
	assert.ErrorContains(t, err, "invalid mode for volumes-from")
	mp := &MountPoint{Type: "bind", RW: false}
	assert.DeepEqual(t, mp.BindOptions(), []string{"rbind", "ro", "rprivate"})
	assert.Equal(t, (&MountPoint{Type: "volume"}).ModeString(), "z")
}

func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"v:/d", "/h:/d:ro", "/d", "a:b:c:d", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mp, err := ParseBind(s, "")
		if err == nil && (mp.Destination == "" || mp.Destination[0] != '/') {
			t.Fatalf("accepted %q with destination %q", s, mp.Destination)
		}
	})
}
