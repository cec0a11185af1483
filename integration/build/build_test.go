// Package build tests the classic builder end to end: the real docker CLI with DOCKER_BUILDKIT=0, raw
// POST /build and the moby client's ImageBuild against a real berthd.
package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/build"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type cli struct {
	t *testing.T
	d *daemon.Daemon
}

func (c cli) ok(args ...string) string {
	c.t.Helper()
	return c.d.MustDocker(c.t, args...)
}

func (c cli) okIn(stdin []byte, args ...string) string {
	c.t.Helper()
	return c.d.MustDockerStdin(c.t, stdin, args...)
}

// start starts berthd with busybox:latest loaded and the CLI set to the classic builder.
func start(t *testing.T) (*daemon.Daemon, cli) {
	t.Setenv("DOCKER_BUILDKIT", "0")
	d := daemon.NewWithBusybox(t)
	return d, cli{t, d}
}

// writeContext writes files (name -> content) into a new directory.
func writeContext(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		assert.NilError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		assert.NilError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return dir
}

func tarOf(t *testing.T, entries []tar.Header, bodies map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		body := bodies[h.Name]
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		h.Size = int64(len(body))
		assert.NilError(t, tw.WriteHeader(&h))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return b.Bytes()
}

func contextTar(t *testing.T, files map[string]string) []byte {
	var hs []tar.Header
	for name := range files {
		hs = append(hs, tar.Header{Name: name})
	}
	return tarOf(t, hs, files)
}

type message struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// post sends a raw POST /build and returns the status and decoded messages (or the error body).
func post(t *testing.T, d *daemon.Daemon, ctx context.Context, query string, body []byte) (int, []message, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://berthd/build?"+query, bytes.NewReader(body))
	assert.NilError(t, err)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := d.HTTPClient().Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, string(raw)
	}
	var msgs []message
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var m message
		assert.NilError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		msgs = append(msgs, m)
	}
	return resp.StatusCode, msgs, string(raw)
}

func streamText(msgs []message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Stream)
	}
	return b.String()
}

var builtRe = regexp.MustCompile(`Successfully built ([0-9a-f]{12})`)

// TestBuildInstructions builds every instruction through the CLI and checks the output, the image
// config and history as dockerd's classic builder leaves them, and that the image runs.
func TestBuildInstructions(t *testing.T) {
	_, c := start(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
ENV A=b
COPY a.txt /app/
WORKDIR /app
RUN echo hi && echo err >&2
USER 1000:1000
RUN id -u > /tmp/uid
USER root
COPY --chown=1000:1000 dir /d
ADD sub.tar /x/
EXPOSE 80 90/udp
VOLUME /data
LABEL k=v
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s CMD true
ONBUILD RUN echo child
ENTRYPOINT ["/bin/echo"]
CMD ["sh"]
`,
		"a.txt": "hello\n", "dir/one": "1", "dir/sub/two": "2",
	})
	var sub bytes.Buffer
	tw := tar.NewWriter(&sub)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "in-tar.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}))
	tw.Write([]byte("ok"))
	tw.Close()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "sub.tar"), sub.Bytes(), 0o644))

	out := c.ok("build", "-t", "app", "-t", "app:two", dir)
	for _, want := range []string{
		"Step 1/18 : FROM busybox\n ---> ",
		"Step 2/18 : ENV A=b\n ---> Running in ",
		" ---> Removed intermediate container ",
		"Step 5/18 : RUN echo hi && echo err >&2\n ---> Running in ",
		"hi\n",
		"Step 18/18 : CMD [\"sh\"]\n",
		"Successfully tagged app:latest\nSuccessfully tagged app:two",
	} {
		assert.Check(t, is.Contains(out, want))
	}
	// COPY runs no announced container.
	assert.Check(t, regexp.MustCompile(`Step 3/18 : COPY a.txt /app/\n ---> [0-9a-f]{12}\nStep 4/18`).MatchString(out), out)
	m := builtRe.FindStringSubmatch(out)
	assert.Assert(t, m != nil, out)
	assert.Check(t, is.Equal(c.ok("image", "inspect", "-f", "{{.ID}}", "app")[7:19], m[1]))

	var cfg struct {
		Env, Cmd, Entrypoint, OnBuild []string
		WorkingDir, User, StopSignal  string
		ExposedPorts, Volumes         map[string]struct{}
		Labels                        map[string]string
		Healthcheck                   struct {
			Test     []string
			Interval int64
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(c.ok("image", "inspect", "-f", "{{json .Config}}", "app")), &cfg))
	assert.Check(t, is.Contains(cfg.Env, "A=b"))
	assert.Check(t, is.DeepEqual(cfg.Cmd, []string{"sh"}))
	assert.Check(t, is.DeepEqual(cfg.Entrypoint, []string{"/bin/echo"}))
	assert.Check(t, is.DeepEqual(cfg.OnBuild, []string{"RUN echo child"}))
	assert.Check(t, is.Equal(cfg.WorkingDir, "/app"))
	assert.Check(t, is.Equal(cfg.User, "root"))
	assert.Check(t, is.Equal(cfg.StopSignal, "SIGUSR1"))
	assert.Check(t, is.Len(cfg.ExposedPorts, 2))
	assert.Check(t, is.Len(cfg.Volumes, 1))
	assert.Check(t, is.Equal(cfg.Labels["k"], "v"))
	assert.Check(t, is.DeepEqual(cfg.Healthcheck.Test, []string{"CMD-SHELL", "true"}))
	assert.Check(t, is.Equal(cfg.Healthcheck.Interval, int64(5*time.Second)))

	hist := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "app")
	for _, want := range []string{
		`/bin/sh -c #(nop)  CMD ["sh"]`,
		`/bin/sh -c #(nop)  ENTRYPOINT ["/bin/echo"]`,
		`/bin/sh -c #(nop)  ENV A=b`,
		`/bin/sh -c #(nop) WORKDIR /app`,
		`/bin/sh -c echo hi && echo err >&2`,
		`/bin/sh -c #(nop)  EXPOSE 80/tcp 90/udp`,
		`/bin/sh -c #(nop)  VOLUME [/data]`,
		`/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" '\x00'}`,
	} {
		assert.Check(t, is.Contains(hist, want))
	}
	assert.Check(t, regexp.MustCompile(`/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /app/ `).MatchString(hist), hist)
	assert.Check(t, regexp.MustCompile(`/bin/sh -c #\(nop\) COPY --chown=1000:1000 dir:[0-9a-f]{64} in /d `).MatchString(hist), hist)

	// A RUN that wrote nothing commits no layer (the runtime's mount points under /etc are not its
	// changes); metadata steps neither.
	sizes := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "app")
	assert.Check(t, is.Contains(sizes, "/bin/sh -c echo hi && echo err >&2|0B"))
	assert.Check(t, is.Contains(sizes, "/bin/sh -c #(nop)  ENV A=b|0B"))
	files := c.ok("run", "--rm", "--entrypoint", "sh", "app", "-c", "cat /app/a.txt /tmp/uid /x/in-tar.txt; echo; stat -c '%u:%g %n' /d /d/one /d/sub/two; pwd")
	assert.Check(t, is.Equal(files, "hello\n1000\nok\n1000:1000 /d\n1000:1000 /d/one\n1000:1000 /d/sub/two\n/app"))

	// No intermediate container is left.
	assert.Check(t, is.Equal(c.ok("ps", "-aq"), ""))

	// ONBUILD triggers run in the child.
	child := writeContext(t, map[string]string{"Dockerfile": "FROM app\nRUN true\n"})
	out = c.ok("build", "-t", "child", child)
	assert.Check(t, is.Contains(out, "# Executing 1 build trigger\n"))
	assert.Check(t, is.Contains(out, "child\n"))
}

// TestBuildCache: a repeated build hits the cache at every step with the same ID; a changed COPY
// source misses from its step on, a changed mtime does not; --no-cache never hits.
func TestBuildCache(t *testing.T) {
	_, c := start(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nENV X=1\nRUN echo one\nCOPY f /f\nRUN echo two\n",
		"f":          "v1",
	})
	out1 := c.ok("build", "-t", "cached", dir)
	id1 := builtRe.FindStringSubmatch(out1)[1]
	out2 := c.ok("build", "-t", "cached", dir)
	assert.Check(t, is.Equal(strings.Count(out2, "Using cache"), 4), out2)
	assert.Check(t, is.Equal(builtRe.FindStringSubmatch(out2)[1], id1))

	future := time.Now().Add(time.Hour)
	assert.NilError(t, os.Chtimes(filepath.Join(dir, "f"), future, future))
	out3 := c.ok("build", dir)
	assert.Check(t, is.Equal(builtRe.FindStringSubmatch(out3)[1], id1), "mtime alone must not miss: %s", out3)

	assert.NilError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("v2"), 0o644))
	out4 := c.ok("build", dir)
	assert.Check(t, is.Equal(strings.Count(out4, "Using cache"), 2), out4)
	assert.Check(t, builtRe.FindStringSubmatch(out4)[1] != id1)

	out5 := c.ok("build", "--no-cache", dir)
	assert.Check(t, !strings.Contains(out5, "Using cache"), out5)

	// Intermediate images are listed only with -a, as by dockerd.
	listed := c.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
	assert.Check(t, is.Equal(strings.Count(listed, "<none>:<none>"), 2), listed) // the last two builds' results
	// history names the local parents, as dockerd's does for built images.
	ids := lines(c.ok("history", "-q", "cached"))
	assert.Assert(t, len(ids) > 5, ids)
	for _, id := range ids[:5] {
		assert.Check(t, id != "<missing>", "%v", ids)
	}
	all := c.ok("images", "-a", "-q")
	assert.Check(t, len(strings.Split(all, "\n")) > 10, all)
}

// TestBuildMultiStage: stages by name, COPY --from, FROM scratch, --target, ARG and --build-arg.
func TestBuildMultiStage(t *testing.T) {
	_, c := start(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE=busybox
FROM $BASE AS gen
ARG FOO=def
RUN echo "foo=$FOO" > /out.txt
FROM scratch AS files
COPY --from=gen /out.txt /
COPY *.txt /txt/
FROM busybox
COPY --from=files / /got/
`,
		"a.txt": "a", "b.txt": "b",
	})
	out := c.ok("build", "--build-arg", "FOO=bar", "--build-arg", "UNUSED=1", "-t", "ms", dir)
	assert.Check(t, is.Contains(out, "Step 1/9 : ARG BASE=busybox\n"))
	assert.Check(t, is.Contains(out, "[Warning] One or more build-args [UNUSED] were not consumed"))
	got := c.ok("run", "--rm", "ms", "sh", "-c", "cat /got/out.txt; ls /got/txt")
	assert.Check(t, is.Equal(got, "foo=bar\na.txt\nb.txt"))
	hist := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "ms")
	assert.Check(t, !strings.Contains(hist, "FOO"), hist)

	c.ok("build", "--build-arg", "FOO=bar", "--target", "gen", "-t", "gen", dir)
	hist = c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "gen")
	assert.Check(t, is.Contains(hist, `|1 FOO=bar /bin/sh -c echo "foo=$FOO" > /out.txt`))

	// The scratch stage's image has only its own layers and history.
	c.ok("build", "--target", "files", "-t", "files", dir)
	assert.Check(t, is.Equal(c.ok("image", "inspect", "-f", "{{len .RootFS.Layers}}", "files"), "2"))
	assert.Check(t, is.Len(strings.Split(c.ok("history", "-q", "files"), "\n"), 2))

	r := c.d.Docker(t, "build", "--target", "nope", dir)
	assert.Check(t, r.ExitCode != 0)
	assert.Check(t, is.Contains(r.Stderr, `target stage "nope" could not be found`))
}

// TestBuildErrors: dockerd's answers for bad Dockerfiles and failed steps, before and during the stream.
func TestBuildErrors(t *testing.T) {
	d, _ := start(t)
	ctx := context.Background()

	code, _, body := post(t, d, ctx, "", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nFOO bar\n"}))
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Contains(body, "dockerfile parse error on line 2: unknown instruction: FOO"))

	code, _, body = post(t, d, ctx, "", contextTar(t, map[string]string{"x": "y"}))
	assert.Check(t, is.Equal(code, http.StatusInternalServerError))
	assert.Check(t, is.Contains(body, "Cannot locate specified Dockerfile: Dockerfile"))

	code, _, body = post(t, d, ctx, "", contextTar(t, map[string]string{"Dockerfile": "\n\n"}))
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Contains(body, "the Dockerfile (Dockerfile) cannot be empty"))

	code, _, body = post(t, d, ctx, "version=3", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\n"}))
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Contains(body, `invalid version \"3\"`))

	code, _, body = post(t, d, ctx, "", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY --chmod=644 a /\n", "a": ""}))
	assert.Check(t, is.Equal(code, http.StatusOK))
	assert.Check(t, is.Contains(body, "the --chmod option requires BuildKit"))

	// A failed RUN: errorDetail carries the exit code; the container stays (rm only removes after success).
	code, msgs, _ := post(t, d, ctx, "", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo out; exit 3\n"}))
	assert.Check(t, is.Equal(code, http.StatusOK))
	last := msgs[len(msgs)-1]
	assert.Assert(t, last.ErrorDetail != nil, streamText(msgs))
	assert.Check(t, is.Equal(last.ErrorDetail.Code, 3))
	assert.Check(t, is.Equal(last.Error, "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3"))
	assert.Check(t, is.Contains(streamText(msgs), "out\n"))
	c := cli{t, d}
	assert.Check(t, c.ok("ps", "-aq") != "")
	c.ok("container", "prune", "-f")

	// forcerm removes it.
	_, msgs, _ = post(t, d, ctx, "forcerm=1", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 2\n"}))
	assert.Check(t, is.Contains(streamText(msgs), "Removed intermediate container"))
	assert.Check(t, is.Equal(c.ok("ps", "-aq"), ""))

	// A base image that is not here is pulled (from a registry on loopback that does not answer).
	_, msgs, _ = post(t, d, ctx, "", contextTar(t, map[string]string{"Dockerfile": "FROM 127.0.0.1:1/nope\n"}))
	assert.Check(t, is.Contains(msgs[len(msgs)-1].Error, "127.0.0.1:1/v2/nope/manifests/latest"), streamText(msgs))
	assert.Check(t, is.Contains(msgs[len(msgs)-1].Error, "connection refused"))

	// A missing COPY source.
	_, msgs, _ = post(t, d, ctx, "", contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY nope /\n"}))
	assert.Check(t, is.Contains(msgs[len(msgs)-1].Error, "file not found in build context or excluded by .dockerignore: stat nope: file does not exist"))
}

// TestBuildQuietAndLabels: q prints only the ID; labels become the last stage's label steps.
func TestBuildQuietAndLabels(t *testing.T) {
	d, c := start(t)
	_, msgs, raw := post(t, d, context.Background(), `q=1&labels={"z":"1","a":"2"}&t=ql`, contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"}))
	assert.Assert(t, is.Len(msgs, 1), raw)
	assert.Check(t, regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(msgs[0].Stream), raw)
	hist := c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "ql")
	assert.Check(t, is.Contains(hist, "/bin/sh -c #(nop)  LABEL z=1\n/bin/sh -c #(nop)  LABEL a=2\n"))
}

// TestBuildDockerignoreAndStdin: .dockerignore (client side and the daemon's trimming of the Dockerfile),
// a Dockerfile from stdin with -f- and a context from stdin.
func TestBuildDockerignoreAndStdin(t *testing.T) {
	_, c := start(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /ctx/\n",
		".dockerignore": "secret\nDockerfile\n.dockerignore\n",
		"secret":        "s", "keep": "k",
	})
	c.ok("build", "-t", "ign", dir)
	assert.Check(t, is.Equal(c.ok("run", "--rm", "ign", "ls", "-A", "/ctx"), "keep"))

	out := c.okIn([]byte("FROM busybox\nRUN echo from-stdin\n"), "build", "-f-", "-t", "stdin", dir)
	assert.Check(t, is.Contains(out, "from-stdin"))
	out = c.okIn([]byte("FROM busybox\nRUN echo ctx-stdin\n"), "build", "-t", "stdin2", "-")
	assert.Check(t, is.Contains(out, "ctx-stdin"))

	// The intermediate containers' settings: --ulimit and --network are honoured.
	out = c.okIn([]byte("FROM busybox\nRUN echo nofile=$(ulimit -n) && ls /sys/class/net\n"), "build", "--ulimit", "nofile=123:456", "--network", "none", "-")
	assert.Check(t, is.Contains(out, "nofile=123\nlo\n"))
}

// TestBuildContextEscape: "..", absolute and symlinked entries of a context never write outside the
// build's scratch directory, and a truncated context fails cleanly.
func TestBuildContextEscape(t *testing.T) {
	d, c := start(t)
	victim := filepath.Join(d.Dir, "escaped")
	entries := []tar.Header{
		{Name: "Dockerfile"},
		{Name: "../../../../../../" + strings.TrimPrefix(victim, "/") + "1"},
		{Name: victim + "2"},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: filepath.Dir(victim)},
		{Name: "link/escaped3"},
	}
	body := tarOf(t, entries, map[string]string{"Dockerfile": "FROM busybox\nCOPY . /c/\n"})
	code, msgs, raw := post(t, d, context.Background(), "t=esc", body)
	assert.Check(t, is.Equal(code, http.StatusOK), raw)
	_ = msgs
	for _, n := range []string{"escaped1", "escaped2", "escaped3"} {
		_, err := os.Stat(filepath.Join(d.Dir, n))
		assert.Check(t, os.IsNotExist(err), n)
	}
	tmp, _ := os.ReadDir(filepath.Join(d.Root, "tmp"))
	assert.Check(t, is.Len(tmp, 0), "scratch left behind")

	good := contextTar(t, map[string]string{"Dockerfile": "FROM busybox\n", "big": strings.Repeat("x", 10000)})
	code, _, raw = post(t, d, context.Background(), "", good[:3000])
	assert.Check(t, is.Equal(code, http.StatusBadRequest), raw)
	tmp, _ = os.ReadDir(filepath.Join(d.Root, "tmp"))
	assert.Check(t, is.Len(tmp, 0), "scratch left behind")
	assert.Check(t, is.Equal(c.ok("ps", "-aq"), ""))
}

// TestBuildCancel: a client hanging up stops the running step and removes its container.
func TestBuildCancel(t *testing.T) {
	d, c := start(t)
	ctr := func(args ...string) []string {
		out, err := exec.Command("ctr", append([]string{"--address", filepath.Join(d.ExecRoot, "containerd", "containerd.sock"), "-n", "berth"}, args...)...).CombinedOutput()
		assert.NilError(t, err, string(out))
		return lines(strings.TrimSpace(string(out)))
	}
	snapshots, leases := ctr("snapshots", "ls"), ctr("leases", "ls")
	cl := d.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := cl.ImageBuild(ctx, bytes.NewReader(contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 300\n"})), build.ImageBuildOptions{Remove: true})
	assert.NilError(t, err)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "started") {
			break
		}
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for c.ok("ps", "-aq") != "" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	assert.Check(t, is.Equal(c.ok("ps", "-aq"), ""))
	// Nothing of the step is left in containerd: no snapshot, no lease.
	assert.Check(t, is.DeepEqual(ctr("snapshots", "ls"), snapshots))
	assert.Check(t, is.DeepEqual(ctr("leases", "ls"), leases))
}

// TestImageBuildClient: the moby client's ImageBuild with tags, build args and the aux ID.
func TestImageBuildClient(t *testing.T) {
	d, c := start(t)
	v := "val"
	resp, err := d.Client(t).ImageBuild(context.Background(), bytes.NewReader(contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nARG V\nRUN echo $V > /v\n"})), build.ImageBuildOptions{Tags: []string{"cl:1"}, BuildArgs: map[string]*string{"V": &v}, Remove: true})
	assert.NilError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Check(t, is.Contains(string(raw), `"aux":{"ID":"sha256:`))
	assert.Check(t, is.Contains(string(raw), "Successfully tagged cl:1"))
	assert.Check(t, is.Equal(c.ok("run", "--rm", "cl:1", "cat", "/v"), "val"))
}

// TestBuildRemoteContextAndAddURL: a tarball URL and a plain-text Dockerfile URL as the context, ADD of
// a URL (served on loopback by the test), and a clear error for an unreachable URL.
func TestBuildRemoteContextAndAddURL(t *testing.T) {
	// The daemon fetches from a server on the host's loopback: run it in the host's namespace (no
	// bridge, no iptables: the harness passes --bridge=none there).
	t.Setenv("BERTHD_TEST_HOST_LOOPBACK", "1")
	d, c := start(t)
	ctxTar := contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "remote"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ctx.tar":
			w.Header().Set("Content-Type", "application/x-tar")
			w.Write(ctxTar)
		case "/Dockerfile":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "FROM busybox\nADD "+"http://"+r.Host+"/data.txt /added\n")
		case "/data.txt":
			io.WriteString(w, "downloaded")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	// The CLI downloads URL contexts itself; API clients (docker-py, compose) let the daemon do it.
	code, msgs, raw := post(t, d, context.Background(), "t=remote1&remote="+srv.URL+"/ctx.tar", nil)
	assert.Assert(t, code == http.StatusOK && msgs[len(msgs)-1].Error == "", raw)
	assert.Check(t, is.Equal(c.ok("run", "--rm", "remote1", "cat", "/f"), "remote"))
	code, msgs, raw = post(t, d, context.Background(), "t=remote2&remote="+srv.URL+"/Dockerfile", nil)
	assert.Assert(t, code == http.StatusOK && msgs[len(msgs)-1].Error == "", raw)
	assert.Check(t, is.Equal(c.ok("run", "--rm", "remote2", "sh", "-c", "cat /added; stat -c %a /added"), "downloaded600"))

	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL + "/ctx.tar"
	closed.Close()
	code, _, body := post(t, d, context.Background(), "remote="+url, nil)
	_ = c
	assert.Check(t, code != http.StatusOK)
	assert.Check(t, is.Contains(body, "error downloading remote context "+url))
}

// TestBuildDockerPy: docker-py's images.build (application/tar, its own stream parsing, BuildError).
func TestBuildDockerPy(t *testing.T) {
	d, c := start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nARG V\nRUN echo py-$V > /v\n"})
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	script := `
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="py:1", rm=True, buildargs={"V": "x"})
print(img.id)
print("".join(l.get("stream", "") for l in logs))
try:
    c.images.build(path=sys.argv[3], rm=True)
except docker.errors.BuildError as e:
    print("BuildError:", e.msg)
`
	cmd := exec.Command("python3", "-c", script, d.Host(), dir, bad)
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
	assert.Check(t, regexp.MustCompile(`^sha256:[0-9a-f]{64}\n`).Match(out), string(out))
	assert.Check(t, is.Contains(string(out), "Successfully tagged py:1"))
	assert.Check(t, is.Contains(string(out), "BuildError: The command '/bin/sh -c exit 3' returned a non-zero code: 3"))
	assert.Check(t, is.Equal(c.ok("run", "--rm", "py:1", "cat", "/v"), "py-x"))
}

// TestBuilderPruneAndDiskUsage: the classic builder keeps its cache as intermediate images, as dockerd's
// does; builder prune (BuildKit's cache) has nothing to remove and system df shows an empty Build Cache.
func TestBuilderPruneAndDiskUsage(t *testing.T) {
	d, c := start(t)
	c.ok("build", "-q", writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"}))
	assert.Check(t, is.Contains(c.ok("builder", "prune", "-f"), "Total reclaimed space: 0B"))
	assert.Check(t, is.Contains(c.ok("system", "df"), "Build Cache"))
	resp, err := d.HTTPClient().Post("http://berthd/build/prune?keep-storage=abc", "", nil)
	assert.NilError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, http.StatusBadRequest))
	assert.Check(t, is.Contains(string(body), "keep-storage is in bytes and expects an integer, got abc"))
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestBuildGitContext: remote=git://... (a git daemon on loopback) with #ref:subdir, and an unreachable
// repository's error.
func TestBuildGitContext(t *testing.T) {
	// The daemon fetches from a server on the host's loopback: run it in the host's namespace (no
	// bridge, no iptables: the harness passes --bridge=none there).
	t.Setenv("BERTHD_TEST_HOST_LOOPBACK", "1")
	d, c := start(t)
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		assert.NilError(t, err, string(out))
	}
	assert.NilError(t, os.MkdirAll(filepath.Join(repo, "sub"), 0o755))
	git("init", "-q")
	assert.NilError(t, os.WriteFile(filepath.Join(repo, "sub", "Dockerfile"), []byte("FROM busybox\nCOPY f /f\n"), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(repo, "sub", "f"), []byte("from-git"), 0o644))
	git("add", ".")
	git("commit", "-q", "-m", "one")
	git("tag", "v1")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	gd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+base, "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), base)
	assert.NilError(t, gd.Start())
	defer func() { gd.Process.Kill(); gd.Wait() }()
	for i := 0; i < 100; i++ {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			conn.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	url := fmt.Sprintf("git://127.0.0.1:%d/repo#v1:sub", port)
	code, msgs, raw := post(t, d, context.Background(), "t=fromgit&remote="+neturl.QueryEscape(url), nil)
	assert.Assert(t, code == http.StatusOK && len(msgs) > 0 && msgs[len(msgs)-1].Error == "", raw)
	assert.Check(t, is.Equal(c.ok("run", "--rm", "fromgit", "cat", "/f"), "from-git"))

	code, _, body := post(t, d, context.Background(), "remote=git://127.0.0.1:1/nope.git", nil)
	assert.Check(t, code != http.StatusOK)
	assert.Check(t, is.Contains(body, "error downloading remote context git://127.0.0.1:1/nope.git"))
}
