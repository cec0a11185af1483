package buildkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/berthd/berthd/integration/internal/daemon"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// printedID is the image ID a build printed ("writing image sha256:...").
func printedID(t *testing.T, progress string) string {
	t.Helper()
	m := regexp.MustCompile(`writing image (sha256:[0-9a-f]{64})`).FindAllStringSubmatch(progress, -1)
	assert.Assert(t, len(m) > 0, "no image ID in:\n%s", progress)
	return m[len(m)-1][1]
}

func TestBuildxLsInspect(t *testing.T) {
	e := start(t)
	ls := e.out("buildx", "ls")
	assert.Assert(t, is.Regexp(`(?m)^default\*?\s+docker\s*$`, ls))
	assert.Assert(t, is.Regexp(`(?m)\\_ default\s+\\_ default\s+running\s+\S+\s+linux/amd64`, ls))

	insp := e.out("buildx", "inspect")
	assert.Assert(t, is.Regexp(`(?m)^Driver:\s+docker$`, insp))
	assert.Assert(t, is.Regexp(`(?m)^Status:\s+running$`, insp))
	assert.Assert(t, is.Regexp(`(?m)^Platforms:\s+linux/amd64`, insp))
	// Each platform once (containerd lists the host's for every runtime plugin).
	assert.Equal(t, strings.Count(insp, "linux/amd64,"), 1, insp)
	assert.Assert(t, is.Contains(insp, "org.mobyproject.buildkit.worker.snapshotter"))
	// The BuildKit berthd embeds, not "v0.0.0+unknown".
	assert.Assert(t, is.Regexp(`(?m)^BuildKit version:\s+v0\.\d+\.\d+$`, insp))
}

const loadDockerfile = `FROM busybox AS base
RUN echo base > /base
FROM base AS final
ARG MSG=none
RUN echo "$MSG" > /msg
COPY f.txt /f.txt
CMD ["cat", "/msg"]
`

func TestBuildxLoadRunRetag(t *testing.T) {
	e := start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": loadDockerfile, "f.txt": "file\n"})

	out := e.ok("buildx", "build", "--load", "-t", "x", "--progress", "plain", "--build-arg", "MSG=hello", "--iidfile", filepath.Join(dir, "iid"), dir)
	// BuildKit's own progress, not the classic builder's.
	assert.Assert(t, is.Regexp(`(?m)^#\d+ \[internal\] load build definition from Dockerfile$`, out))
	assert.Assert(t, is.Regexp(`(?m)^#\d+ naming to docker.io/library/x:latest( [\d.]+s)? done$`, out))
	id := printedID(t, out)
	assert.Equal(t, e.out("inspect", "--format", "{{.Id}}", "x"), id)
	iid, err := os.ReadFile(filepath.Join(dir, "iid"))
	assert.NilError(t, err)
	assert.Equal(t, string(iid), id)
	assert.Assert(t, is.Contains(e.out("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"), "x:latest "+id[7:19]))
	assert.Equal(t, e.out("run", "--rm", "x"), "hello")
	assert.Equal(t, e.out("run", "--rm", "x", "cat", "/base", "/f.txt"), "base\nfile")

	// Plain `docker build` goes through buildx (the builder alias) and moves the tag: the previous image
	// stays, untagged.
	out = e.ok("build", "-t", "x", "--progress", "plain", "--build-arg", "MSG=again", dir)
	id2 := printedID(t, out)
	assert.Assert(t, id2 != id)
	assert.Equal(t, e.out("inspect", "--format", "{{.Id}}", "x"), id2)
	assert.Equal(t, e.out("run", "--rm", "x"), "again")
	assert.Equal(t, e.out("inspect", "--format", "{{len .RepoTags}}", id), "0")
	dangling := e.out("images", "-f", "dangling=true", "-q", "--no-trunc")
	assert.Assert(t, is.Contains(dangling, id))

	// An untagged build is kept as a dangling image.
	out = e.ok("buildx", "build", "--load", "--target", "base", "--progress", "plain", dir)
	id3 := printedID(t, out)
	assert.Assert(t, is.Contains(e.out("images", "-f", "dangling=true", "-q", "--no-trunc"), id3))
	assert.Equal(t, e.out("run", "--rm", id3, "cat", "/base"), "base")
	assert.Assert(t, e.docker("run", "--rm", id3, "cat", "/msg").ExitCode != 0, "--target base must stop before the final stage")
}

// TestBuildxSavePush saves, loads, pushes and pulls a BuildKit-built image. The registry listens on the
// host's loopback, so berthd runs in the host's network namespace here: the image is FROM scratch, since
// BuildKit looks a base image up in its registry (docker.io) even when the image is local.
func TestBuildxSavePush(t *testing.T) {
	reg := regtest.StartRegistry(t, "", "")
	e := start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY f.txt /f.txt\nCMD [\"/f.txt\"]\n", "f.txt": "file\n"})
	name := reg + "/bk/x:v1"
	id := printedID(t, e.ok("buildx", "build", "--load", "-t", name, "--progress", "plain", dir))

	tarPath := filepath.Join(t.TempDir(), "x.tar")
	e.ok("save", "-o", tarPath, name)
	e.ok("rmi", name)
	assert.Assert(t, e.docker("inspect", id).ExitCode != 0)
	e.ok("load", "-i", tarPath)
	assert.Equal(t, e.out("inspect", "--format", "{{.Id}}", name), id)

	e.ok("push", name)
	e.ok("rmi", name)
	e.ok("pull", name)
	assert.Equal(t, e.out("inspect", "--format", "{{.Id}}", name), id)
	ctr := e.out("create", name)
	e.ok("cp", ctr+":/f.txt", filepath.Join(dir, "copied"))
	b, err := os.ReadFile(filepath.Join(dir, "copied"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "file\n")

	// --push: BuildKit pushes from the moby exporter and the image is in berthd's store too.
	pushed := reg + "/bk/y:v1"
	id = printedID(t, e.ok("buildx", "build", "--push", "-t", pushed, "--progress", "plain", dir))
	assert.Equal(t, e.out("inspect", "--format", "{{.Id}}", pushed), id)
	e.ok("rmi", pushed)
	e.ok("pull", pushed)
	assert.Equal(t, e.out("inspect", "--format", "{{.Id}}", pushed), id)
}

const secretValue = "topsecret-9f3a61c2"

func TestBuildxMountsHeredocPlatform(t *testing.T) {
	e := start(t)
	dir := writeContext(t, map[string]string{
		"secret.txt": secretValue,
		"Dockerfile": `FROM busybox AS base
ARG GREETING
RUN --mount=type=secret,id=s test "$(sha256sum < /run/secrets/s)" = "` + fmt.Sprintf("%x  -", sha256.Sum256([]byte(secretValue))) + `" && echo secret-ok > /secret-ok
RUN <<EOT
echo heredoc-one > /h1
echo "$GREETING" > /h2
EOT
FROM base AS cached
ARG N
RUN --mount=type=cache,target=/c echo "run-$N" >> /c/log && cp /c/log /seen
`})
	build := func(n string, extra ...string) string {
		args := append([]string{"buildx", "build", "--progress", "plain", "--platform", "linux/amd64",
			"--secret", "id=s,src=" + filepath.Join(dir, "secret.txt"), "--build-arg", "GREETING=hi-" + n, "--build-arg", "N=" + n}, extra...)
		return e.ok(append(args, dir)...)
	}
	build("1", "--load", "-t", "x")
	build("2", "--load", "-t", "x")
	// The second build's RUN read what the first one left in the cache mount.
	assert.Equal(t, e.out("run", "--rm", "x", "cat", "/seen"), "run-1\nrun-2")
	assert.Equal(t, e.out("run", "--rm", "x", "cat", "/secret-ok", "/h1", "/h2"), "secret-ok\nheredoc-one\nhi-2")
	assert.Equal(t, e.out("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", "x"), "linux/amd64")

	// The secret's value is nowhere in the image: not in any layer, not in the config.
	save := filepath.Join(t.TempDir(), "x.tar")
	e.ok("save", "-o", save, "x")
	assertNotInSave(t, save, secretValue)

	// --output type=local and type=tar write the final stage's filesystem.
	local := filepath.Join(t.TempDir(), "out")
	build("3", "--target", "base", "--output", "type=local,dest="+local)
	b, err := os.ReadFile(filepath.Join(local, "h2"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "hi-3\n")
	tarOut := filepath.Join(t.TempDir(), "out.tar")
	build("4", "--target", "base", "--output", "type=tar,dest="+tarOut)
	files := tarFiles(t, tarOut)
	assert.Equal(t, files["h2"], "hi-4\n")
	assert.Equal(t, files["secret-ok"], "secret-ok\n")
}

// assertNotInSave fails if needle occurs in any file of a `docker save` archive, decompressing layers.
func assertNotInSave(t *testing.T, path, needle string) {
	t.Helper()
	f, err := os.Open(path)
	assert.NilError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		b, err := io.ReadAll(tr)
		assert.NilError(t, err)
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if u, err := io.ReadAll(zr); err == nil {
				b = u
			}
		}
		n++
		assert.Assert(t, !bytes.Contains(b, []byte(needle)), "%s in %s", needle, h.Name)
	}
	assert.Assert(t, n > 2, "empty save archive")
}

// tarFiles reads the regular files of a tar archive.
func tarFiles(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	assert.NilError(t, err)
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		assert.NilError(t, err)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			assert.NilError(t, err)
			out[strings.TrimPrefix(h.Name, "./")] = string(b)
		}
	}
}

func TestBuildxSSH(t *testing.T) {
	agentDir := t.TempDir()
	sock := filepath.Join(agentDir, "agent.sock")
	// -D keeps the agent in the foreground, so the test owns and ends it.
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatalf("ssh-agent (openssh-client, hack/install-deps.sh): %v", err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	daemon.WaitFor(t, 10*time.Second, "ssh-agent socket", func() bool { _, err := os.Stat(sock); return err == nil })
	key := filepath.Join(agentDir, "k")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bk-test", "-f", key).CombinedOutput()
	assert.NilError(t, err, string(out))
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	out, err = add.CombinedOutput()
	assert.NilError(t, err, string(out))

	e := start(t)
	e.extra = []string{"SSH_AUTH_SOCK=" + sock}
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo ssh-ok > /ssh-ok
`})
	e.ok("buildx", "build", "--load", "-t", "x", "--ssh", "default", dir)
	assert.Equal(t, e.out("run", "--rm", "x", "cat", "/ssh-ok"), "ssh-ok")
}

// TestBuildxCancel kills buildx while a RUN step sleeps: BuildKit sees the client's connection go and
// ends the step; nothing is left running, in containerd or outside it.
func TestBuildxCancel(t *testing.T) {
	e := start(t)
	run, marker := sleeper()
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" + run + "\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan daemon.Result, 1)
	go func() { done <- e.run(ctx, "", "buildx", "build", "--progress", "plain", "-t", "x", dir) }()
	daemon.WaitFor(t, 60*time.Second, "the RUN step", func() bool { return stepRunning(marker) })
	cancel() // SIGKILL: buildx gets no chance to cancel politely; only its connections close.
	res := <-done
	assert.Assert(t, res.ExitCode != 0)
	daemon.WaitFor(t, 30*time.Second, "BuildKit to end the step", func() bool { return !stepRunning(marker) })
	ctrs, tasks := containerdState(t, e.d)
	assert.Check(t, is.Len(ctrs, 0))
	assert.Check(t, is.Len(tasks, 0))
	assert.Equal(t, e.out("ps", "-aq"), "")
	assert.Assert(t, e.docker("inspect", "x").ExitCode != 0)
	// The builder still works.
	dir2 := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo after > /after\n"})
	e.ok("buildx", "build", "--load", "-t", "x", dir2)
	assert.Equal(t, e.out("run", "--rm", "x", "cat", "/after"), "after")
}

func TestBuildxConcurrentCacheMount(t *testing.T) {
	e := start(t)
	var wg sync.WaitGroup
	res := make([]daemon.Result, 2)
	for i := range res {
		dir := writeContext(t, map[string]string{"Dockerfile": fmt.Sprintf(`FROM busybox
RUN --mount=type=cache,target=/c,id=shared for i in 1 2 3 4 5; do echo b%d-$i >> /c/log; sleep 0.2; done; cp /c/log /seen
`, i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res[i] = e.run(ctx, "", "buildx", "build", "--load", "-t", fmt.Sprintf("c%d", i), dir)
		}()
	}
	wg.Wait()
	for i, r := range res {
		assert.Equal(t, r.ExitCode, 0, "build %d: %s", i, r.Combined())
	}
	// Both wrote into the one shared cache mount.
	for i := range res {
		seen := e.out("run", "--rm", fmt.Sprintf("c%d", i), "cat", "/seen")
		assert.Assert(t, is.Contains(seen, fmt.Sprintf("b%d-5", i)))
	}
	third := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/c,id=shared cp /c/log /seen\n"})
	e.ok("buildx", "build", "--load", "-t", "c3", third)
	seen := e.out("run", "--rm", "c3", "cat", "/seen")
	assert.Assert(t, is.Contains(seen, "b0-5"))
	assert.Assert(t, is.Contains(seen, "b1-5"))
}

// TestBuildKitRunDefaults: RUN steps get the seccomp filter and capability set `docker run` gets, and
// their cgroups sit under berthd's cgroup parent (as dockerd's under /docker/buildkit).
func TestBuildKitRunDefaults(t *testing.T) {
	e := start(t)
	const probe = `grep -E '^(Seccomp|NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status`
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN " + probe + " > /status && cat /proc/self/cgroup > /cgroup\n"})
	e.ok("buildx", "build", "--load", "-t", "x", dir)
	got := e.out("run", "--rm", "x", "cat", "/status")
	want := e.out("run", "--rm", "busybox", "sh", "-c", probe)
	assert.Equal(t, got, want)
	assert.Assert(t, is.Contains(got, "Seccomp:\t2"))
	assert.Assert(t, is.Regexp(`(?m)^0::/berth/buildkit/[a-z0-9]+$`, e.out("run", "--rm", "x", "cat", "/cgroup")))
}

// TestBothBuilders builds one Dockerfile with the classic builder and with BuildKit: both images run
// alike.
func TestBothBuilders(t *testing.T) {
	e := start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": loadDockerfile, "f.txt": "file\n"})
	classic := *e
	classic.extra = []string{"DOCKER_BUILDKIT=0"}
	classic.ok("build", "-t", "classic", "--build-arg", "MSG=same", dir)
	e.ok("build", "-t", "bk", "--build-arg", "MSG=same", dir)
	for _, img := range []string{"classic", "bk"} {
		assert.Equal(t, e.out("run", "--rm", img), "same", img)
		assert.Equal(t, e.out("run", "--rm", img, "cat", "/base", "/f.txt"), "base\nfile", img)
	}
	assert.Assert(t, e.out("inspect", "--format", "{{.Id}}", "classic") != e.out("inspect", "--format", "{{.Id}}", "bk"))
}

// TestBuildKitRestart: BuildKit's cache under <data-root>/buildkit survives a restart, and berthd stops
// cleanly with BuildKit running.
func TestBuildKitRestart(t *testing.T) {
	e := start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo once > /once\n"})
	id := printedID(t, e.ok("buildx", "build", "--load", "-t", "x", "--progress", "plain", dir))
	_, err := os.Stat(filepath.Join(e.d.Root, "buildkit", "cache.db"))
	assert.NilError(t, err)
	e.d.Restart(t)
	out := e.ok("buildx", "build", "--load", "-t", "x", "--progress", "plain", dir)
	assert.Assert(t, is.Regexp(`(?m)^#\d+ \[2/2\] RUN echo once > /once\n#\d+ CACHED$`, out))
	assert.Equal(t, printedID(t, out), id)
	assert.Equal(t, e.out("run", "--rm", "x", "cat", "/once"), "once")
}

// TestBuildxMultiPlatformLoadRefused: berthd's store keeps one platform per image, so loading a
// multi-platform result is refused with a message that says what to do instead; --output type=oci works.
func TestBuildxMultiPlatformLoadRefused(t *testing.T) {
	e := start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "x\n"})
	res := e.docker("buildx", "build", "--load", "-t", "mp", "--platform", "linux/amd64,linux/arm64", dir)
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Combined(), "type=oci"), res.Combined())
	assert.Assert(t, e.docker("inspect", "mp").ExitCode != 0)

	oci := filepath.Join(t.TempDir(), "mp.tar")
	e.ok("buildx", "build", "--platform", "linux/amd64,linux/arm64", "--output", "type=oci,dest="+oci, dir)
	files := tarFiles(t, oci)
	assert.Assert(t, is.Contains(files["index.json"], "application/vnd.oci.image.index.v1+json"))
}

// TestBuildxDuPrune: `docker buildx du` lists BuildKit's cache records and `docker buildx prune` (and
// `docker builder prune` through the alias) removes them.
func TestBuildxDuPrune(t *testing.T) {
	e := start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/x && echo y > /y\n"})
	e.ok("buildx", "build", "--load", "-t", "x", dir)
	du := e.out("buildx", "du", "--verbose")
	assert.Assert(t, is.Contains(du, "exec.cachemount"), du)
	assert.Assert(t, is.Contains(du, "regular"), du)
	out := e.ok("builder", "prune", "-af")
	assert.Assert(t, is.Regexp(`Total:\s+\d`, out))
	du = e.out("buildx", "du")
	assert.Assert(t, !strings.Contains(du, "exec.cachemount"), du)
	// The image BuildKit exported is berthd's, not the cache's: it survives the prune.
	assert.Equal(t, e.out("run", "--rm", "x", "cat", "/y"), "y")
}

// TestBuildKitShutdownDuringBuild: SIGTERM while a RUN step runs ends the build and berthd exits
// cleanly (status 0, within the harness's bound), leaving nothing running.
func TestBuildKitShutdownDuringBuild(t *testing.T) {
	e := start(t)
	run, marker := sleeper()
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" + run + "\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan daemon.Result, 1)
	go func() { done <- e.run(ctx, "", "buildx", "build", "-t", "x", dir) }()
	daemon.WaitFor(t, 60*time.Second, "the RUN step", func() bool { return stepRunning(marker) })
	e.d.Stop(t)
	res := <-done
	assert.Assert(t, res.ExitCode != 0)
	assert.Check(t, !stepRunning(marker), "the RUN step outlived berthd")
	e.d.Start(t)
	ctrs, tasks := containerdState(t, e.d)
	assert.Check(t, is.Len(tasks, 0))
	assert.Check(t, is.Len(ctrs, 0))
	e.ok("buildx", "build", "--load", "-t", "x", writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"}))
}

// TestHijackErrors: POST /grpc and /session refuse a request without an h2c upgrade with dockerd's
// statuses and wording, and /grpc serves BuildKit's control API (one worker, each platform once).
func TestHijackErrors(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	for _, tc := range []struct {
		path, upgrade string
		status        int
		msg           string
	}{
		{"/grpc", "", 500, "no upgrade proto in request"},
		{"/grpc", "websocket", 500, "protocol websocket not supported"},
		{"/session", "", 400, "no upgrade proto in request"},
		{"/session", "websocket", 400, "protocol websocket not supported"},
	} {
		req, err := http.NewRequest(http.MethodPost, "http://berthd"+tc.path, nil)
		assert.NilError(t, err)
		if tc.upgrade != "" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", tc.upgrade)
		}
		resp, err := d.HTTPClient().Do(req)
		assert.NilError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Check(t, is.Equal(resp.StatusCode, tc.status), "%s %q", tc.path, tc.upgrade)
		assert.Check(t, is.Equal(strings.TrimSpace(string(b)), `{"message":"`+tc.msg+`"}`), "%s %q", tc.path, tc.upgrade)
	}

	ws, err := bkClient(t, d).ListWorkers(context.Background())
	assert.NilError(t, err)
	assert.Assert(t, is.Len(ws, 1))
	seen := map[string]bool{}
	for _, p := range ws[0].Platforms {
		k := p.OS + "/" + p.Architecture + "/" + p.Variant
		assert.Check(t, !seen[k], "platform %s twice", k)
		seen[k] = true
	}
	assert.Check(t, seen["linux/amd64/"])
	assert.Check(t, is.Equal(ws[0].Labels["org.mobyproject.buildkit.worker.snapshotter"], "overlayfs"))
	assert.Check(t, is.Equal(ws[0].Labels["org.mobyproject.buildkit.worker.containerd.namespace"], namespace))
}
