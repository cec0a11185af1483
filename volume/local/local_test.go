package local

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/hack/testenv"

	"github.com/berthd/berthd/volume"
	"github.com/berthd/berthd/volume/drivers/testsuite"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func newRoot(t *testing.T) *Root {
	t.Helper()
	r, err := New(context.Background(), filepath.Join(t.TempDir(), "volumes"))
	assert.NilError(t, err)
	return r
}

func TestContract(t *testing.T) {
	testsuite.Run(t, func(t *testing.T) volume.Driver { return newRoot(t) })
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"ab", "a1", "A.b-c_d", "0", "x"} {
		err := ValidateName(n)
		if len(n) == 1 {
			assert.ErrorContains(t, err, "volume name is too short, names should be at least two alphanumeric characters")
			assert.Assert(t, errdefs.IsInvalidArgument(err))
			continue
		}
		assert.NilError(t, err, n)
	}
	for _, n := range []string{"../x", "a/b", "/abs", ".hidden", "-x", "a b", "ä1", "a\x00b", "..", "_x"} {
		err := ValidateName(n)
		assert.Assert(t, errdefs.IsInvalidArgument(err), "%q: %v", n, err)
		if len(n) > 1 {
			assert.ErrorContains(t, err, "includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")
		}
	}
}

func TestNameLengthLimit(t *testing.T) {
	assert.NilError(t, ValidateName(strings.Repeat("a", MaxNameLength)))
	r := newRoot(t)
	v, err := r.Create(context.Background(), strings.Repeat("a", MaxNameLength), nil)
	assert.NilError(t, err, "the longest name a directory can have")
	assert.NilError(t, r.Remove(context.Background(), v))
	_, err = r.Create(context.Background(), strings.Repeat("a", 10000), nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "volume name is too long (10000 characters): names may be at most 255 characters"))
}

func TestCreateRefusesPathNames(t *testing.T) {
	r := newRoot(t)
	parent := filepath.Dir(r.Path())
	for _, n := range []string{"../escape", "a/../../b", "/tmp/x"} {
		_, err := r.Create(context.Background(), n, nil)
		assert.Assert(t, errdefs.IsInvalidArgument(err), n)
	}
	entries, err := os.ReadDir(parent)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 1) // only "volumes"
}

func TestOptionValidation(t *testing.T) {
	cases := []struct {
		opts map[string]string
		err  string
	}{
		{map[string]string{"foo": "bar"}, `invalid option: "foo" (valid options: device, o, size, type)`},
		{map[string]string{"device": "tmpfs"}, `missing required option: "type"`},
		{map[string]string{"type": "tmpfs"}, `missing required option: "device"`},
		{map[string]string{"o": "size=1m"}, `missing required option: "type"`},
		{map[string]string{"size": "10m"}, "quota size requested but no quota support"},
		{map[string]string{"size": "lots"}, "invalid size"},
		{map[string]string{"type": "cifs", "device": "//host:445/share"}, ""},
		{map[string]string{"type": "cifs", "device": "cifs://host:445/share"}, "port not allowed"},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, ""},
	}
	for _, c := range cases {
		_, err := parseOpts(c.opts)
		if c.err == "" {
			assert.NilError(t, err, "%v", c.opts)
			continue
		}
		assert.ErrorContains(t, err, c.err)
		assert.Assert(t, errdefs.IsInvalidArgument(err))
	}
}

func TestOptionsPersistAndReload(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "volumes")
	r, err := New(ctx, dir)
	assert.NilError(t, err)
	_, err = r.Create(ctx, "withopts", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
	assert.NilError(t, err)
	_, err = r.Create(ctx, "plain", nil)
	assert.NilError(t, err)

	fi, err := os.Stat(filepath.Join(dir, "withopts", optsFile))
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o600))
	b, err := os.ReadFile(filepath.Join(dir, "withopts", optsFile))
	assert.NilError(t, err)
	var mo mountOpts
	assert.NilError(t, json.Unmarshal(b, &mo))
	assert.Equal(t, mo.MountType, "tmpfs")
	assert.Equal(t, mo.MountOpts, "size=1m")
	_, err = os.Stat(filepath.Join(dir, "plain", optsFile))
	assert.Assert(t, os.IsNotExist(err))
	fi, err = os.Stat(filepath.Join(dir, "plain", DataDir))
	assert.NilError(t, err)
	assert.Equal(t, fi.Mode().Perm(), os.FileMode(0o755))

	r2, err := New(ctx, dir)
	assert.NilError(t, err)
	v, err := r2.Get(ctx, "withopts")
	assert.NilError(t, err)
	assert.DeepEqual(t, v.(*localVolume).Options(), map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
	vols, err := r2.List(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 2)
}

func TestRemoveLeavesNothing(t *testing.T) {
	ctx := context.Background()
	r := newRoot(t)
	v, err := r.Create(ctx, "gone", nil)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(v.Path(), "f"), []byte("x"), 0o644))
	assert.NilError(t, r.Remove(ctx, v))
	_, err = os.Stat(filepath.Join(r.Path(), "gone"))
	assert.Assert(t, os.IsNotExist(err))
	entries, _ := os.ReadDir(filepath.Join(r.Path(), trashDir))
	assert.Equal(t, len(entries), 0)
}

func TestMetadataFileIsNotAVolume(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "volumes")
	assert.NilError(t, os.MkdirAll(filepath.Join(dir, trashDir, "half"), 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "metadata.db"), nil, 0o600))
	r, err := New(ctx, dir)
	assert.NilError(t, err)
	vols, err := r.List(ctx)
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 0)
	_, err = os.Stat(filepath.Join(dir, trashDir))
	assert.Assert(t, os.IsNotExist(err), "trash of a crashed run is cleaned")
}

func TestParseMountOptions(t *testing.T) {
	flags, data := parseMountOptions("ro,size=1m,nosuid,uid=1000")
	assert.Equal(t, data, "size=1m,uid=1000")
	assert.Assert(t, flags != 0)
	assert.Equal(t, maskPassword("user=u,password=secret,vers=3"), "user=u,password=********,vers=3")
}

func TestTmpfsMountOnUse(t *testing.T) {
	testenv.NeedRoot(t) // to mount
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "volumes")
	r, err := New(ctx, dir)
	assert.NilError(t, err)
	v, err := r.Create(ctx, "tmp", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
	assert.NilError(t, err)
	mounted := func() bool {
		ok, err := mountinfo.Mounted(v.Path())
		assert.NilError(t, err)
		return ok
	}
	assert.Assert(t, !mounted(), "not mounted before use")
	p, err := v.Mount(ctx, "a")
	assert.NilError(t, err)
	assert.Assert(t, mounted())
	_, err = v.Mount(ctx, "b")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(p, "x"), []byte("hi"), 0o644))
	assert.ErrorContains(t, r.Remove(ctx, v), "volume has active mounts")
	assert.NilError(t, v.Unmount(ctx, "a"))
	assert.Assert(t, mounted(), "still mounted while b holds it")

	// A restart adopts the mount instead of tearing it down.
	r2, err := New(ctx, dir)
	assert.NilError(t, err)
	v2, err := r2.Get(ctx, "tmp")
	assert.NilError(t, err)
	assert.Assert(t, v2.(*localVolume).mounted)
	assert.Assert(t, mounted())
	assert.NilError(t, v2.(volume.LiveRestorer).LiveRestoreVolume(ctx, "b"))
	assert.NilError(t, v2.Unmount(ctx, "b"))
	assert.Assert(t, !mounted(), "last unmount unmounts")
	assert.NilError(t, r2.Remove(ctx, v2))

	// A size limit is enforced by the kernel: the tmpfs is really there.
	v3, err := r2.Create(ctx, "tiny", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=64k"})
	assert.NilError(t, err)
	p, err = v3.Mount(ctx, "c")
	assert.NilError(t, err)
	err = os.WriteFile(filepath.Join(p, "big"), make([]byte, 1<<20), 0o644)
	assert.Assert(t, err != nil && strings.Contains(err.Error(), "no space"), "%v", err)
	assert.NilError(t, v3.Unmount(ctx, "c"))
	assert.NilError(t, r2.Remove(ctx, v3))
}

func TestBadMountFailsAtMount(t *testing.T) {
	testenv.NeedRoot(t) // to mount
	ctx := context.Background()
	r := newRoot(t)
	v, err := r.Create(ctx, "bad", map[string]string{"type": "nosuchfs", "device": "x", "o": "password=hunter2"})
	assert.NilError(t, err)
	_, err = v.Mount(ctx, "a")
	assert.ErrorContains(t, err, "failed to mount local volume")
	assert.Assert(t, !strings.Contains(err.Error(), "hunter2"))
	assert.Assert(t, is.Contains(err.Error(), "password=********"))
	assert.NilError(t, v.Unmount(ctx, "a"))
	assert.NilError(t, r.Remove(ctx, v))
}

// On ext4 the volumes root carries the top-directory hint, so volume directories spread over block groups.
func TestRootMarkedTopDir(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skip("not ext4")
	}
	if _, err := New(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	assert.Assert(t, flags&fsTopDirFlag != 0, "flags %#x", flags)
}
