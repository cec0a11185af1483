package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	buildtypes "github.com/berthd/berthd/api/types/build"
	ctypes "github.com/berthd/berthd/api/types/container"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fake is an in-memory containers service and image store: containers record what the builder did to
// them; a commit stores the configs the builder gave, and marks a layer when something was written.
type fake struct {
	mu      sync.Mutex
	n       int
	ctrs    map[string]*fakeCtr
	images  map[string]*Image
	tags    map[string]string
	removed []string
}

type fakeCtr struct {
	cfg     *ctypes.Config
	written bool
	ran     bool
}

func newFake() *fake {
	f := &fake{ctrs: map[string]*fakeCtr{}, images: map[string]*Image{}, tags: map[string]string{}}
	f.images["sha256:base"] = &Image{ID: "sha256:base", Config: &image.Config{Config: &imagetypes.ContainerConfig{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}}}}
	f.tags["busybox:latest"] = "sha256:base"
	return f
}

func (f *fake) Create(ctx context.Context, cfg *ctypes.Config, hc *ctypes.HostConfig) (string, []string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("%064x", f.n)
	f.ctrs[id] = &fakeCtr{cfg: cfg}
	return id, nil, nil
}

func (f *fake) Run(ctx context.Context, id string, stdout, stderr io.Writer) (int, error) {
	c := f.ctrs[id]
	c.ran, c.written = true, true
	cmd := strings.Join(c.cfg.Cmd, " ")
	fmt.Fprintf(stdout, "ran %s\n", cmd)
	if strings.Contains(cmd, "exit 7") {
		return 7, nil
	}
	return 0, nil
}

func (f *fake) Mkdir(ctx context.Context, id, dir string, uid, gid int) error {
	f.ctrs[id].written = true
	return nil
}

func (f *fake) IsDir(ctx context.Context, id, p string) (bool, error) { return false, nil }

func (f *fake) CopyIn(ctx context.Context, id, dir, chown string, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	f.ctrs[id].written = true
	return err
}

func (f *fake) Archive(ctx context.Context, id, p string, w io.Writer) error {
	return errdefs.ErrNotImplemented
}

func (f *fake) Commit(ctx context.Context, id string, c Commit) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	cfg := &image.Config{Parent: c.Parent, Config: c.Config, ContainerConfig: c.ContainerConfig, Created: &now,
		History: []image.History{{CreatedBy: c.CreatedBy, EmptyLayer: !f.ctrs[id].written}}}
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	iid := "sha256:" + hex.EncodeToString(sum[:])
	f.images[iid] = &Image{ID: iid, Config: cfg}
	return iid, nil
}

func (f *fake) Remove(ctx context.Context, id string) error {
	f.removed = append(f.removed, id)
	return nil
}

func (f *fake) Get(ctx context.Context, ref string) (*Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.tags[ref]; ok {
		ref = id
	} else if id, ok := f.tags[ref+":latest"]; ok {
		ref = id
	}
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("No such image: " + ref)
}

func (f *fake) List(ctx context.Context) ([]*Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Image
	for _, img := range f.images {
		out = append(out, img)
	}
	return out, nil
}

func (f *fake) Tag(ctx context.Context, id, ref string) error {
	f.tags[ref] = id
	return nil
}

func (f *fake) Scratch(ctx context.Context) (string, func(context.Context), error) {
	f.images["sha256:scratch"] = &Image{ID: "sha256:scratch", Config: &image.Config{}}
	return "sha256:scratch", func(context.Context) {}, nil
}

func (f *fake) Pull(ctx context.Context, ref string, progress func(imagetypes.JSONMessage)) error {
	return errdefs.ErrNotFound.WithMessage("pull access denied for " + ref)
}

func contextTar(t *testing.T, files map[string]string) io.Reader {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Now()}))
		tw.Write([]byte(body))
	}
	assert.NilError(t, tw.Close())
	return &b
}

func build(t *testing.T, f *fake, opts buildtypes.Options, files map[string]string) (string, string, error) {
	b := New(Config{TmpRoot: t.TempDir()}, f, f)
	var out strings.Builder
	id, err := b.Build(context.Background(), opts, contextTar(t, files), func(m imagetypes.JSONMessage) { out.WriteString(m.Stream) })
	return id, out.String(), err
}

func TestStepsOutputAndHistory(t *testing.T) {
	f := newFake()
	id, out, err := build(t, f, buildtypes.Options{Tags: []string{"app"}, Remove: true}, map[string]string{
		"Dockerfile": "ARG V=1\nFROM busybox\nARG A=x\nENV E=e\nRUN echo $A\nCOPY f /f\nCMD echo hi\nEXPOSE 81 80/udp 90-91\n",
		"f":          "data",
	})
	assert.NilError(t, err)
	assert.Check(t, is.Contains(out, "Step 1/8 : ARG V=1\nStep 2/8 : FROM busybox\n ---> base\n"))
	assert.Check(t, is.Contains(out, "Step 5/8 : RUN echo $A\n ---> Running in 000000000000\nran /bin/sh -c echo $A\n ---> Removed intermediate container 000000000000\n"))
	assert.Check(t, is.Contains(out, "Successfully tagged app:latest\n"))
	assert.Check(t, is.Equal(f.tags["app:latest"], id))

	var created []string
	for cur := f.images[id]; cur != nil; cur = f.images[cur.Config.Parent] {
		if len(cur.Config.History) > 0 {
			created = append([]string{cur.Config.History[0].CreatedBy}, created...)
		}
	}
	assert.Assert(t, is.Len(created, 6))
	assert.Check(t, is.Equal(created[0], "/bin/sh -c #(nop)  ARG A=x"))
	assert.Check(t, is.Equal(created[1], "/bin/sh -c #(nop)  ENV E=e"))
	assert.Check(t, is.Equal(created[2], "|1 A=x /bin/sh -c echo $A"))
	assert.Check(t, strings.HasPrefix(created[3], "/bin/sh -c #(nop) COPY file:"), created[3])
	assert.Check(t, strings.HasSuffix(created[3], " in /f "), created[3])
	assert.Check(t, is.Equal(created[4], `/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]`))
	assert.Check(t, is.Equal(created[5], "/bin/sh -c #(nop)  EXPOSE 80/udp 81/tcp 90/tcp 91/tcp"))
	final := f.images[id].Config
	assert.Check(t, is.DeepEqual(final.Config.Cmd, []string{"/bin/sh", "-c", "echo hi"}))
	assert.Check(t, is.DeepEqual(final.Config.Env, []string{"PATH=/bin", "E=e"}))
	// The RUN's container saw the build arg; the image config does not keep it.
	var runCfg *ctypes.Config
	for _, c := range f.ctrs {
		if c.ran {
			runCfg = c.cfg
		}
	}
	assert.Check(t, is.DeepEqual(runCfg.Env, []string{"PATH=/bin", "E=e", "A=x"}))
	assert.Check(t, is.DeepEqual(runCfg.Entrypoint, []string{}))
}

func TestCacheHitsAndMisses(t *testing.T) {
	f := newFake()
	files := map[string]string{"Dockerfile": "FROM busybox\nRUN a\nCOPY f /f\nRUN b\n", "f": "v1"}
	id1, _, err := build(t, f, buildtypes.Options{}, files)
	assert.NilError(t, err)
	id2, out, err := build(t, f, buildtypes.Options{}, files)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(id1, id2))
	assert.Check(t, is.Equal(strings.Count(out, " ---> Using cache\n"), 3), out)

	files["f"] = "v2"
	id3, out, err := build(t, f, buildtypes.Options{}, files)
	assert.NilError(t, err)
	assert.Check(t, id3 != id1)
	assert.Check(t, is.Equal(strings.Count(out, "Using cache"), 1), out)

	_, out, err = build(t, f, buildtypes.Options{NoCache: true}, files)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(strings.Count(out, "Using cache"), 0), out)

	// A build arg in use changes the RUN's cache key.
	v := "1"
	_, out, err = build(t, f, buildtypes.Options{BuildArgs: map[string]*string{"X": &v}}, map[string]string{"Dockerfile": "FROM busybox\nARG X\nRUN a\n"})
	assert.NilError(t, err)
	v2 := "2"
	_, out, err = build(t, f, buildtypes.Options{BuildArgs: map[string]*string{"X": &v2}}, map[string]string{"Dockerfile": "FROM busybox\nARG X\nRUN a\n"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(strings.Count(out, "Using cache"), 1), out)
}

func TestCacheKeyIgnoresContainerFields(t *testing.T) {
	a := &imagetypes.ContainerConfig{Hostname: "abc", Image: "sha256:1", Cmd: []string{"x"}}
	b := &imagetypes.ContainerConfig{Hostname: "def", Image: "sha256:2", Cmd: []string{"x"}}
	assert.Check(t, is.Equal(cacheKey(a), cacheKey(b)))
	b.Env = []string{"A=1"}
	assert.Check(t, cacheKey(a) != cacheKey(b))
}

func TestFailedRunAndErrors(t *testing.T) {
	f := newFake()
	_, _, err := build(t, f, buildtypes.Options{}, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 7\n"})
	var ec interface{ ExitCode() int }
	assert.Assert(t, err != nil)
	assert.Check(t, is.Equal(err.Error(), "The command '/bin/sh -c exit 7' returned a non-zero code: 7"))
	assert.Check(t, asExit(err, &ec) && ec.ExitCode() == 7)

	for df, want := range map[string]string{
		"FROM busybox\nBOGUS x\n":                "dockerfile parse error on line 2: unknown instruction: BOGUS",
		"RUN x\n":                                "no build stage in current context",
		"FROM busybox\nSTOPSIGNAL NOPE\n":        "Invalid signal: NOPE",
		"FROM busybox\nRUN --mount=x y\n":        "the --mount option requires BuildKit",
		"FROM busybox\nCOPY missing /\n":         "file not found in build context or excluded by .dockerignore: stat missing: file does not exist",
		"FROM busybox\nCOPY a b /dst\n":          "When using COPY with more than one source file, the destination must be a directory and end with a /",
		"FROM busybox AS x\nFROM busybox AS x\n": "x stage name already used",
	} {
		_, _, err := build(t, f, buildtypes.Options{}, map[string]string{"Dockerfile": df, "a": "", "b": ""})
		assert.Check(t, err != nil && strings.Contains(err.Error(), want), "%q: %v", df, err)
	}
	_, _, err = build(t, f, buildtypes.Options{Target: "nope"}, map[string]string{"Dockerfile": "FROM busybox\n"})
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, _, err = build(t, f, buildtypes.Options{Tags: []string{"a@sha256:" + strings.Repeat("0", 64)}}, map[string]string{"Dockerfile": "FROM busybox\n"})
	assert.Check(t, err != nil && strings.Contains(err.Error(), "build tag cannot contain a digest"), "%v", err)
}

func asExit(err error, target *interface{ ExitCode() int }) bool {
	e, ok := err.(interface{ ExitCode() int })
	*target = e
	return ok
}

func TestExposedPortsAndSignals(t *testing.T) {
	ports, err := exposedPorts([]string{"80", "90-91/udp", "80/tcp"})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(ports, []string{"80/tcp", "90/udp", "91/udp"}))
	_, err = exposedPorts([]string{"70000"})
	assert.Check(t, err != nil)
	for _, s := range []string{"SIGTERM", "term", "9", "SIGRTMIN+3"} {
		assert.Check(t, validSignal(s), s)
	}
	assert.Check(t, validSignal("SIGNOPE") != nil)
}

func TestContextIsTrimmedByDockerignore(t *testing.T) {
	for _, link := range []bool{false, true} {
		scratch := t.TempDir()
		bc := &buildContext{scratch: scratch, dir: filepath.Join(scratch, "ctx")}
		assert.NilError(t, os.Mkdir(bc.dir, 0o700))
		files := map[string]string{"Dockerfile": "FROM x", ".dockerignore": "Dockerfile\n", "keep": "k"}
		var r io.Reader = contextTar(t, files)
		if link {
			// A Dockerfile behind a link is read from the extracted files.
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "real", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
			tw.Write([]byte("FROM x"))
			tw.WriteHeader(&tar.Header{Name: "Dockerfile", Typeflag: tar.TypeSymlink, Linkname: "real"})
			tw.WriteHeader(&tar.Header{Name: ".dockerignore", Mode: 0o644, Size: 11, Typeflag: tar.TypeReg})
			tw.Write([]byte("Dockerfile\n"))
			tw.Close()
			r = &b
		}
		assert.NilError(t, spoolContext(context.Background(), bc, r, "/Dockerfile", "/dockerfile", "/.dockerignore"))
		assert.NilError(t, bc.readDockerfile(context.Background(), "Dockerfile"))
		assert.Check(t, is.Equal(string(bc.dockerfile), "FROM x"))
		assert.NilError(t, bc.extracted(context.Background()))
		_, err := os.Lstat(filepath.Join(bc.dir, "Dockerfile"))
		assert.Check(t, os.IsNotExist(err), "link=%v", link)
		_, err = os.Stat(filepath.Join(bc.dir, ".dockerignore"))
		assert.Check(t, err == nil)
	}
}

// TestIndexAndDiskHashesAgree: a context resolved through the spool's index and through extracted files
// gives the same sources; the index's hash ignores times and follows contents.
func TestIndexResolution(t *testing.T) {
	scratch := t.TempDir()
	bc := &buildContext{scratch: scratch, dir: filepath.Join(scratch, "ctx")}
	assert.NilError(t, os.Mkdir(bc.dir, 0o700))
	assert.NilError(t, spoolContext(context.Background(), bc, contextTar(t, map[string]string{"d/a": "1", "d/b": "2", "x.txt": "x", "y.txt": "y"})))
	srcs, err := bc.spool.resolveIndex(bc.dir, "d")
	assert.NilError(t, err)
	assert.Check(t, is.Len(srcs, 1))
	assert.Check(t, srcs[0].fi.IsDir())
	assert.Check(t, strings.HasPrefix(srcs[0].hash, "dir:"))
	srcs, err = bc.spool.resolveIndex(bc.dir, "*.txt")
	assert.NilError(t, err)
	assert.Check(t, is.Len(srcs, 2))
	_, err = bc.spool.resolveIndex(bc.dir, "nope")
	assert.Check(t, errdefs.IsNotFound(err))
	srcs, err = bc.spool.resolveIndex(bc.dir, "x.txt")
	assert.NilError(t, err)
	h1 := srcs[0].hash

	scratch2 := t.TempDir()
	bc2 := &buildContext{scratch: scratch2, dir: filepath.Join(scratch2, "ctx")}
	assert.NilError(t, os.Mkdir(bc2.dir, 0o700))
	time.Sleep(10 * time.Millisecond) // other mtimes
	assert.NilError(t, spoolContext(context.Background(), bc2, contextTar(t, map[string]string{"x.txt": "x"})))
	srcs, err = bc2.spool.resolveIndex(bc2.dir, "x.txt")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(srcs[0].hash, h1))
}

func TestBuildArgsEnvAndHistory(t *testing.T) {
	p := "http://proxy:3128"
	v := "1"
	given := map[string]*string{"HTTP_PROXY": &p, "V": &v, "UNUSED": &v}
	a := newBuildArgs(given)
	var s stageArgs
	s.set("V", a.value("V", nil))
	s.set("D", a.value("D", nil)) // declared without value: not in the environment
	env := s.envFor([]string{"PATH=/bin"}, given)
	assert.Check(t, is.DeepEqual(env, []string{"HTTP_PROXY=http://proxy:3128", "V=1"}))
	// Proxy args nobody declared stay out of history, as with dockerd.
	assert.Check(t, is.DeepEqual(s.historyPrefix(env), []string{"|1", "V=1"}))
	// ENV wins over ARG.
	assert.Check(t, is.DeepEqual(s.envFor([]string{"V=env"}, nil), []string(nil)))
	assert.Check(t, is.DeepEqual(a.unused(), []string{"UNUSED"}))
}
