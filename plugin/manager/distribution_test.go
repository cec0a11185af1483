package manager

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	"github.com/containerd/containerd/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	imagetypes "github.com/berthd/berthd/api/types/image"
	types "github.com/berthd/berthd/api/types/plugin"
	"github.com/berthd/berthd/distribution"
	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/distribution/reference"
)

func (e *env) openWithRegistry(t *testing.T) (*Manager, *distribution.Service) {
	t.Helper()
	reg := distribution.New(nil, distribution.Config{UserAgent: "berthd-test"})
	m, err := New(context.Background(), Config{Root: e.root, SocketRoot: e.sockets, SocketWait: 3 * time.Second,
		StopTimeout: time.Second, Registry: reg}, e.fake.Factory, e.ev)
	assert.NilError(t, err)
	return m, reg
}

type progressLog struct{ msgs []imagetypes.JSONMessage }

func (p *progressLog) add(m imagetypes.JSONMessage) { p.msgs = append(p.msgs, m) }

func (p *progressLog) statuses() string {
	var s []string
	for _, m := range p.msgs {
		s = append(s, m.Status)
	}
	return strings.Join(s, "|")
}

func TestPushPullUpgrade(t *testing.T) {
	testenv.NeedRoot(t) // unpacking layers keeps ownership
	addr := regtest.StartRegistry(t, "", "")
	e := newEnv(t)
	m, _ := e.openWithRegistry(t)
	ctx := context.Background()
	remote := addr + "/vp:latest"

	// A created plugin with a hard link and a nested directory.
	assert.NilError(t, m.Create(ctx, remote, makeTar(t,
		entry{name: "config.json", body: testConfig},
		entry{name: "rootfs/", typ: tar.TypeDir},
		entry{name: "rootfs/bin/plugin", body: "#!/bin/sh\necho v1\n"},
		entry{name: "rootfs/bin/link", typ: tar.TypeSymlink, link: "plugin"},
		entry{name: "rootfs/bin/hard", typ: tar.TypeLink, link: "rootfs/bin/plugin"},
		entry{name: "rootfs/data/", typ: tar.TypeDir},
	)))
	var pl progressLog
	assert.NilError(t, m.Push(ctx, remote, nil, pl.add))
	assert.Check(t, strings.HasPrefix(pl.statuses(), "The push refers to repository ["+addr+"/vp]"), pl.statuses())
	assert.Check(t, strings.Contains(pl.statuses(), "Pushed"), pl.statuses())
	last := pl.msgs[len(pl.msgs)-1]
	assert.Assert(t, last.Aux != nil)
	var aux imagetypes.PushResult
	assert.NilError(t, json.Unmarshal(*last.Aux, &aux))
	assert.Equal(t, aux.Tag, "latest")
	assert.Check(t, strings.HasPrefix(aux.Digest, "sha256:"))

	privs, err := m.Privileges(ctx, remote, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Len(privs, 0))

	// Install under another name.
	pl = progressLog{}
	assert.NilError(t, m.Pull(ctx, remote, "copy", privs, nil, pl.add))
	assert.Check(t, strings.Contains(pl.statuses(), "Pulling fs layer"), pl.statuses())
	assert.Check(t, strings.Contains(pl.statuses(), "Download complete"), pl.statuses())
	assert.Check(t, strings.Contains(pl.statuses(), "Digest: "+aux.Digest), pl.statuses())
	p, err := m.Inspect(ctx, "copy")
	assert.NilError(t, err)
	assert.Equal(t, p.Name, "copy:latest")
	assert.Equal(t, p.PluginReference, remote)
	assert.Check(t, !p.Enabled)
	assert.DeepEqual(t, p.Settings.Env, []string{"DEBUG=0"})
	assert.Assert(t, p.Config.Rootfs != nil)
	assert.Check(t, is.Len(p.Config.Rootfs.DiffIds, 1))
	rootfs := filepath.Join(e.root, p.ID, "rootfs")
	b, err := os.ReadFile(filepath.Join(rootfs, "bin", "plugin"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "#!/bin/sh\necho v1\n")
	link, err := os.Readlink(filepath.Join(rootfs, "bin", "link"))
	assert.NilError(t, err)
	assert.Equal(t, link, "plugin")
	fi1, err := os.Stat(filepath.Join(rootfs, "bin", "plugin"))
	assert.NilError(t, err)
	fi2, err := os.Stat(filepath.Join(rootfs, "bin", "hard"))
	assert.NilError(t, err)
	assert.Check(t, os.SameFile(fi1, fi2), "hard link kept")
	assert.Check(t, is.Contains(e.ev.all(), "plugin pull copy:latest"))

	// The default local name is the remote's; it is taken now.
	name, err := m.PullName(remote, "")
	assert.NilError(t, err)
	assert.Equal(t, name, addr+"/vp:latest")
	err = m.Pull(ctx, remote, "", privs, nil, nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), err)
	assert.ErrorContains(t, err, "plugin "+addr+"/vp:latest already exists")

	// Unknown remote, wrong privileges.
	_, err = m.Privileges(ctx, addr+"/nope:latest", nil)
	assert.Check(t, errdefs.IsNotFound(err), err)
	err = m.Pull(ctx, addr+"/nope", "x", nil, nil, nil)
	assert.Check(t, errdefs.IsNotFound(err), err)
	err = m.Pull(ctx, remote, "y", []types.Privilege{{Name: "network", Value: []string{"host"}}}, nil, nil)
	assert.ErrorContains(t, err, "incorrect privileges")
	_, err = m.Inspect(ctx, "y")
	assert.Check(t, errdefs.IsNotFound(err))

	// Upgrade to a new version: same ID and settings, new rootfs and reference.
	assert.NilError(t, m.Set(ctx, "copy", []string{"DEBUG=1"}))
	v2ref := addr + "/vp:v2"
	cfg2 := strings.Replace(testConfig, `"test"`, `"test v2"`, 1)
	assert.NilError(t, m.Create(ctx, v2ref, makeTar(t,
		entry{name: "config.json", body: cfg2},
		entry{name: "rootfs/", typ: tar.TypeDir},
		entry{name: "rootfs/bin/plugin", body: "#!/bin/sh\necho v2\n"},
	)))
	assert.NilError(t, m.Push(ctx, v2ref, nil, nil))
	assert.NilError(t, m.Enable(ctx, "copy", 0))
	err = m.Upgrade(ctx, "copy", v2ref, nil, nil, nil)
	assert.Check(t, errdefs.IsConflict(err), err)
	assert.ErrorContains(t, err, "plugin must be disabled before upgrading")
	assert.NilError(t, m.Disable(ctx, "copy", false))
	assert.NilError(t, m.Upgrade(ctx, "copy", v2ref, nil, nil, nil))
	up, err := m.Inspect(ctx, "copy")
	assert.NilError(t, err)
	assert.Equal(t, up.ID, p.ID)
	assert.Equal(t, up.Name, "copy:latest")
	assert.Equal(t, up.PluginReference, v2ref)
	assert.Equal(t, up.Config.Description, "test v2")
	assert.DeepEqual(t, up.Settings.Env, []string{"DEBUG=1"})
	b, err = os.ReadFile(filepath.Join(rootfs, "bin", "plugin"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "#!/bin/sh\necho v2\n")
	_, err = os.Lstat(filepath.Join(rootfs, "bin", "link"))
	assert.Check(t, os.IsNotExist(err), "old rootfs replaced")
	_, err = os.Lstat(filepath.Join(e.root, p.ID, "rootfs-old"))
	assert.Check(t, os.IsNotExist(err))

	// The upgrade survives a restart.
	assert.NilError(t, m.Shutdown(ctx))
	m2, _ := e.openWithRegistry(t)
	defer m2.Shutdown(ctx)
	up, err = m2.Inspect(ctx, "copy")
	assert.NilError(t, err)
	assert.Equal(t, up.Config.Description, "test v2")
	entries, _ := os.ReadDir(filepath.Join(e.root, "tmp"))
	assert.Check(t, is.Len(entries, 0), "staging cleaned up")
}

// pushRaw pushes a hand-made image: config (with mediaType) and one gzipped layer of entries.
func pushRaw(t *testing.T, reg *distribution.Service, remote, configMediaType, config string, entries ...entry) {
	t.Helper()
	dir := t.TempDir()
	var gzbuf bytes.Buffer
	zw := gzip.NewWriter(&gzbuf)
	_, err := zw.Write(makeTar(t, entries...).Bytes())
	assert.NilError(t, err)
	assert.NilError(t, zw.Close())
	write := func(name, mt string, b []byte) ocispec.Descriptor {
		assert.NilError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	layer := write("layer", images.MediaTypeDockerSchema2LayerGzip, gzbuf.Bytes())
	cfg := write("config", configMediaType, []byte(config))
	mb, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: images.MediaTypeDockerSchema2Manifest,
		Config: cfg, Layers: []ocispec.Descriptor{layer}})
	assert.NilError(t, err)
	man := write("manifest", images.MediaTypeDockerSchema2Manifest, mb)
	ref, err := reference.ParseNormalizedNamed(remote)
	assert.NilError(t, err)
	prov := distribution.FileProvider{layer.Digest: filepath.Join(dir, "layer"), cfg.Digest: filepath.Join(dir, "config"), man.Digest: filepath.Join(dir, "manifest")}
	assert.NilError(t, reg.PushFiles(context.Background(), ref, man, prov, nil, nil))
}

func TestPullHostile(t *testing.T) {
	testenv.NeedRoot(t) // unpacking layers keeps ownership
	addr := regtest.StartRegistry(t, "", "")
	e := newEnv(t)
	m, reg := e.openWithRegistry(t)
	defer m.Shutdown(context.Background())
	ctx := context.Background()
	outside := t.TempDir()

	// Entries that try to leave the rootfs: dot-dot names, an absolute symlink written through, a hard
	// link to a host file.
	pushRaw(t, reg, addr+"/evil:latest", MediaTypePluginConfig, testConfig,
		entry{name: "../../escape-dotdot", body: "x"},
		entry{name: "abs", typ: tar.TypeSymlink, link: outside},
		entry{name: "abs/escape-symlink", body: "x"},
		entry{name: "rel", typ: tar.TypeSymlink, link: "../../../../../../../../" + outside},
		entry{name: "rel/escape-rel", body: "x"},
	)
	err := m.Pull(ctx, addr+"/evil", "evil", nil, nil, nil)
	if err == nil {
		p, ierr := m.Inspect(ctx, "evil")
		assert.NilError(t, ierr)
		rootfs := filepath.Join(e.root, p.ID, "rootfs")
		_, err := os.Stat(filepath.Join(rootfs, "escape-dotdot"))
		assert.NilError(t, err, "a dot-dot name lands inside the rootfs")
	}
	ents, _ := os.ReadDir(outside)
	assert.Check(t, is.Len(ents, 0), "nothing written outside the rootfs")
	for _, p := range []string{filepath.Join(e.root, "escape-dotdot"), filepath.Join(filepath.Dir(e.root), "escape-dotdot"), filepath.Join(e.root, "tmp", "escape-dotdot")} {
		_, err := os.Lstat(p)
		assert.Check(t, os.IsNotExist(err), p)
	}

	pushRaw(t, reg, addr+"/hardlink:latest", MediaTypePluginConfig, testConfig,
		entry{name: "passwd", typ: tar.TypeLink, link: "../../../../../../../../etc/passwd"},
	)
	err = m.Pull(ctx, addr+"/hardlink", "hardlink", nil, nil, nil)
	if err == nil {
		p, _ := m.Inspect(ctx, "hardlink")
		fi, serr := os.Stat(filepath.Join(e.root, p.ID, "rootfs", "passwd"))
		host, _ := os.Stat("/etc/passwd")
		assert.Check(t, serr != nil || !os.SameFile(fi, host), "hard link to a host file")
	}

	// An image is not a plugin.
	pushRaw(t, reg, addr+"/image:latest", images.MediaTypeDockerSchema2Config, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`,
		entry{name: "f", body: "x"})
	_, err = m.Privileges(ctx, addr+"/image", nil)
	assert.Check(t, errdefs.IsInvalidArgument(err), err)
	assert.ErrorContains(t, err, "is not a plugin")
	err = m.Pull(ctx, addr+"/image", "", nil, nil, nil)
	assert.ErrorContains(t, err, "is not a plugin")

	// Privileges are checked against the config.
	hostNet := strings.Replace(testConfig, `"entrypoint"`, `"network": {"type": "host"}, "linux": {"capabilities": ["CAP_SYS_ADMIN"]}, "entrypoint"`, 1)
	pushRaw(t, reg, addr+"/priv:latest", MediaTypePluginConfig, hostNet, entry{name: "f", body: "x"})
	privs, err := m.Privileges(ctx, addr+"/priv", nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, privs, []types.Privilege{
		{Name: "capabilities", Description: "list of additional capabilities required", Value: []string{"CAP_SYS_ADMIN"}},
		{Name: "network", Description: "permissions to access a network", Value: []string{"host"}},
	})
	err = m.Pull(ctx, addr+"/priv", "priv", privs[:1], nil, nil)
	assert.ErrorContains(t, err, "incorrect privileges")
	// Order and descriptions do not matter.
	assert.NilError(t, m.Pull(ctx, addr+"/priv", "priv", []types.Privilege{{Name: "network", Value: []string{"host"}}, {Name: "capabilities", Value: []string{"CAP_SYS_ADMIN"}}}, nil, nil))
}

func TestRecoverUpgrade(t *testing.T) {
	e := newEnv(t)
	m := e.open(t)
	ctx := context.Background()
	assert.NilError(t, m.Create(ctx, "vol", pluginTar(t)))
	p, err := m.Inspect(ctx, "vol")
	assert.NilError(t, err)
	assert.NilError(t, m.Shutdown(ctx))
	dir := filepath.Join(e.root, p.ID)
	orig := filepath.Join(dir, "rootfs")
	write := func(path, body string) {
		assert.NilError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		assert.NilError(t, os.WriteFile(path, []byte(body), 0o644))
	}
	read := func(path string) string {
		b, err := os.ReadFile(path)
		assert.NilError(t, err)
		return string(b)
	}

	// Interrupted before the commit, new rootfs already in place: the old one comes back.
	assert.NilError(t, os.Rename(orig, filepath.Join(dir, oldRootfs)))
	write(filepath.Join(orig, "bin", "plugin"), "new")
	write(filepath.Join(dir, upgradeRecord), "{}")
	m = e.open(t)
	got, err := m.Inspect(ctx, "vol")
	assert.NilError(t, err)
	assert.Equal(t, got.ID, p.ID)
	assert.Equal(t, read(filepath.Join(orig, "bin", "plugin")), "#!/bin/sh\n")
	for _, n := range []string{oldRootfs, upgradeRecord} {
		_, err := os.Lstat(filepath.Join(dir, n))
		assert.Check(t, os.IsNotExist(err), n)
	}
	assert.NilError(t, m.Shutdown(ctx))

	// Interrupted between the two renames (no rootfs at all).
	assert.NilError(t, os.Rename(orig, filepath.Join(dir, oldRootfs)))
	write(filepath.Join(dir, upgradeRecord), "{}")
	m = e.open(t)
	_, err = m.Inspect(ctx, "vol")
	assert.NilError(t, err)
	assert.Equal(t, read(filepath.Join(orig, "bin", "plugin")), "#!/bin/sh\n")
	assert.NilError(t, m.Shutdown(ctx))

	// Committed, clean-up not done: the old rootfs goes.
	write(filepath.Join(dir, oldRootfs, "bin", "plugin"), "old")
	m = e.open(t)
	defer m.Shutdown(ctx)
	_, err = m.Inspect(ctx, "vol")
	assert.NilError(t, err)
	assert.Equal(t, read(filepath.Join(orig, "bin", "plugin")), "#!/bin/sh\n")
	_, err = os.Lstat(filepath.Join(dir, oldRootfs))
	assert.Check(t, os.IsNotExist(err))
}

func TestPushPullAuthAndDigest(t *testing.T) {
	testenv.NeedRoot(t) // unpacking layers keeps ownership
	addr := regtest.StartRegistry(t, "u", "secret")
	e := newEnv(t)
	m, _ := e.openWithRegistry(t)
	defer m.Shutdown(context.Background())
	ctx := context.Background()
	remote := addr + "/vp:latest"
	auth := &imagetypes.AuthConfig{Username: "u", Password: "secret"}

	assert.NilError(t, m.Create(ctx, remote, pluginTar(t)))
	err := m.Push(ctx, remote, nil, nil)
	assert.Check(t, errdefs.IsUnauthorized(err), err)
	var pl progressLog
	assert.NilError(t, m.Push(ctx, remote, auth, pl.add))
	var res imagetypes.PushResult
	assert.NilError(t, json.Unmarshal(*pl.msgs[len(pl.msgs)-1].Aux, &res))

	_, err = m.Privileges(ctx, remote, nil)
	assert.Check(t, errdefs.IsNotFound(err), err)
	assert.ErrorContains(t, err, "pull access denied")
	privs, err := m.Privileges(ctx, remote, auth)
	assert.NilError(t, err)

	// By digest: the local name drops the digest and gets ":latest".
	byDigest := addr + "/vp@" + res.Digest
	name, err := m.PullName(byDigest, "")
	assert.NilError(t, err)
	assert.Equal(t, name, addr+"/vp:latest")
	assert.NilError(t, m.Pull(ctx, byDigest, "pinned", privs, auth, nil))
	p, err := m.Inspect(ctx, "pinned")
	assert.NilError(t, err)
	assert.Equal(t, p.PluginReference, byDigest)
}
