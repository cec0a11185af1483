package buildkit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"
	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/tonistiigi/fsutil"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// legacyCLI is the Debian docker CLI 20.10 (hack/install-deps.sh's docker.io): the last CLI with the
// built-in BuildKit client that drives POST /build?version=2 and /session itself.
const legacyCLI = "/usr/bin/docker"

// legacyDockerfile has a cache mount, a heredoc, a build arg and three stages (one never built).
const legacyDockerfile = `FROM busybox AS base
ARG GREETING=hello
RUN --mount=type=cache,target=/cache echo "$GREETING" >> /cache/log && wc -l < /cache/log | tr -d ' ' > /count
RUN <<EOF
echo heredoc > /heredoc
echo "$GREETING" > /greeting
EOF

FROM base AS final
LABEL stage=final
RUN cat /count

FROM base AS broken
RUN false
`

// runLegacyCLI runs the 20.10 CLI with DOCKER_BUILDKIT=1 against d.
func runLegacyCLI(t *testing.T, d *daemon.Daemon, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, legacyCLI, args...)
	cmd.Dir = dir
	cfg := filepath.Join(d.Dir, "legacy-config")
	_ = os.MkdirAll(cfg, 0o700)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+cfg, "DOCKER_CONTEXT=", "DOCKER_BUILDKIT=1", "BUILDKIT_PROGRESS=plain")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestLegacyBuildKit(t *testing.T) {
	testenv.NeedCommand(t, legacyCLI, "docker.io")
	d := daemon.NewWithBusybox(t)
	c := d.Client(t)
	ctx := context.Background()
	dir := writeContext(t, map[string]string{"Dockerfile": legacyDockerfile, "data.txt": "data\n"})

	t.Run("cli", func(t *testing.T) {
		iid := filepath.Join(t.TempDir(), "iid")
		out, err := runLegacyCLI(t, d, dir, "build", "-t", "legacy:1", "--build-arg", "GREETING=hi", "--target", "final", "--iidfile", iid, ".")
		assert.NilError(t, err, out)
		assert.Check(t, is.Contains(out, "[base 2/3] RUN --mount=type=cache"), "BuildKit's progress reached the CLI")
		assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "legacy:1", "cat", "/heredoc", "/greeting", "/count"), "heredoc\nhi\n1"))
		insp, _, err := c.ImageInspectWithRaw(ctx, "legacy:1")
		assert.NilError(t, err)
		assert.Check(t, is.Equal(insp.Config.Labels["stage"], "final"))
		got, err := os.ReadFile(iid)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(got), insp.ID), "the CLI read moby.image.id")

		// A different argument reruns the step; the cache mount kept what the first build wrote.
		out, err = runLegacyCLI(t, d, dir, "build", "-t", "legacy:2", "--build-arg", "GREETING=again", "--target", "final", ".")
		assert.NilError(t, err, out)
		assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "legacy:2", "cat", "/count"), "2"))

		// The same build again is all cache hits.
		out, err = runLegacyCLI(t, d, dir, "build", "-t", "legacy:2", "--build-arg", "GREETING=again", "--target", "final", ".")
		assert.NilError(t, err, out)
		assert.Check(t, is.Contains(out, "CACHED"))

		dest := t.TempDir()
		out, err = runLegacyCLI(t, d, dir, "build", "--target", "base", "-o", "type=local,dest="+dest, ".")
		assert.NilError(t, err, out)
		got, err = os.ReadFile(filepath.Join(dest, "heredoc"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(got), "heredoc\n"))

		out, err = runLegacyCLI(t, d, dir, "build", "--target", "broken", ".")
		assert.Check(t, err != nil, out)
		assert.Check(t, is.Contains(out, `"/bin/sh -c false" did not complete successfully: exit code: 1`))
	})

	t.Run("go client with session", func(t *testing.T) {
		id := goClientBuild(t, c, dir, build.ImageBuildOptions{Tags: []string{"legacy:go"}, Target: "base", BuildArgs: map[string]*string{"GREETING": ptr("go")}})
		insp, _, err := c.ImageInspectWithRaw(ctx, "legacy:go")
		assert.NilError(t, err)
		assert.Check(t, is.Equal(insp.ID, id))
		assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "legacy:go", "cat", "/greeting"), "go"))
	})

	t.Run("context in the request body", func(t *testing.T) {
		resp, err := c.ImageBuild(ctx, tarContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY data.txt /data.txt\n", "data.txt": "from the body\n"}), build.ImageBuildOptions{Version: build.BuilderBuildKit, Tags: []string{"legacy:body"}})
		assert.NilError(t, err)
		id, msg := readBuildStream(t, resp.Body)
		assert.Check(t, is.Equal(msg, ""))
		assert.Check(t, id != "")
		assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "legacy:body", "cat", "/data.txt"), "from the body"))
	})

	t.Run("cli context from stdin", func(t *testing.T) {
		// The 20.10 CLI uploads a tar context from stdin in a second request (buildid=upload-request:ID).
		var tarball bytes.Buffer
		_, err := io.Copy(&tarball, tarContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY data.txt /\n", "data.txt": "from stdin\n"}))
		assert.NilError(t, err)
		cmd := exec.Command(legacyCLI, "build", "-t", "legacy:stdin", "-")
		cmd.Stdin = &tarball
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "legacy-config"), "DOCKER_CONTEXT=", "DOCKER_BUILDKIT=1", "BUILDKIT_PROGRESS=plain")
		out, err := cmd.CombinedOutput()
		assert.NilError(t, err, string(out))
		assert.Check(t, is.Equal(d.MustDocker(t, "run", "--rm", "legacy:stdin", "cat", "/data.txt"), "from stdin"))

		// A build waiting for an upload that never comes fails instead of hanging.
		status, body := d.Request(t, "POST", "/build?version=2&remote=upload-request&buildid=nobody", "application/x-tar", "")
		assert.Check(t, is.Equal(status, http.StatusNotFound), body)
		assert.Check(t, is.Contains(body, "no context was uploaded for build nobody"))
	})

	t.Run("refusals", func(t *testing.T) {
		status, body := d.Request(t, "POST", "/build?version=2&networkmode=bridge", "application/x-tar", "")
		assert.Check(t, is.Equal(status, 501))
		assert.Check(t, is.Contains(body, `network mode \"bridge\" not supported by buildkit`))
		status, body = d.Request(t, "POST", "/build?version=2&memory=1000000", "application/x-tar", "")
		assert.Check(t, is.Equal(status, 501))
		assert.Check(t, is.Contains(body, "memory is not supported by BuildKit builds"))
		status, body = d.Request(t, "POST", `/build?version=2&outputs=[{"Type":"local"},{"Type":"tar"}]`, "application/x-tar", "")
		assert.Check(t, is.Equal(status, 400))
		assert.Check(t, is.Contains(body, "multiple outputs not supported"))
		status, body = d.Request(t, "POST", "/build/cancel", "", "")
		assert.Check(t, is.Equal(status, 400))
		assert.Check(t, is.Contains(body, "build ID not provided"))
	})

	t.Run("cancel", func(t *testing.T) {
		// The marker keeps the shell (and its command line) alive, so pgrep finds this build's step only.
		marker := "legacy-cancel-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		cdir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 120; echo " + marker + "\n"})
		errc := make(chan error, 1)
		go func() {
			_, err := goClientBuildErr(t, c, cdir, build.ImageBuildOptions{BuildID: "cancel-me", NoCache: true})
			errc <- err
		}()
		daemon.WaitFor(t, 60*time.Second, "the build to run its RUN step", func() bool {
			out, _ := exec.Command("pgrep", "-f", marker).Output()
			return len(out) > 0
		})
		assert.NilError(t, c.BuildCancel(ctx, "cancel-me"))
		select {
		case err := <-errc:
			assert.Check(t, is.ErrorContains(err, "cancel"), "a cancelled build fails")
		case <-time.After(60 * time.Second):
			t.Fatal("the build did not stop after POST /build/cancel")
		}
		daemon.WaitFor(t, 30*time.Second, "the cancelled step's process to end", func() bool {
			out, _ := exec.Command("pgrep", "-f", marker).Output()
			return len(out) == 0
		})
	})

	t.Run("disk usage and prune", func(t *testing.T) {
		goClientBuild(t, c, dir, build.ImageBuildOptions{Target: "base", BuildArgs: map[string]*string{"GREETING": ptr("df")}})
		du, err := c.DiskUsage(ctx, types.DiskUsageOptions{})
		assert.NilError(t, err)
		assert.Assert(t, len(du.BuildCache) > 0, "BuildKit's cache is in /system/df")
		var kinds = map[string]bool{}
		withParents := 0
		for _, r := range du.BuildCache {
			kinds[r.Type] = true
			if len(r.Parents) > 0 {
				withParents++
			}
		}
		assert.Check(t, withParents > 0, "layers have parents")
		assert.Check(t, kinds["exec.cachemount"], "the cache mount is a record: %v", kinds)
		assert.Check(t, kinds["regular"], "%v", kinds)
		assert.Check(t, is.Equal(du.BuilderSize, int64(0)), "no BuilderSize from API 1.42")

		status, raw := d.Request(t, "GET", "/v1.41/system/df?type=build-cache", "", "")
		assert.Equal(t, status, 200)
		var old struct {
			BuilderSize int64
			BuildCache  []map[string]any
		}
		assert.NilError(t, json.Unmarshal([]byte(raw), &old))
		assert.Check(t, old.BuilderSize > 0, raw)
		withParent := 0
		for _, r := range old.BuildCache {
			_, spaced := r[" Parents"]
			assert.Check(t, !spaced, "API 1.41 has no \" Parents\"")
			if _, p := r["Parent"]; p {
				withParent++
			}
		}
		assert.Check(t, is.Equal(withParent, withParents), "API 1.41 rows name their Parent: %s", raw)
		_, raw = d.Request(t, "GET", "/v1.45/system/df?type=build-cache", "", "")
		assert.Check(t, is.Contains(raw, `" Parents":[`))
		assert.Check(t, !strings.Contains(raw, `"Parent":`), raw)

		out := d.MustDocker(t, "system", "df")
		assert.Check(t, is.Regexp(`Build Cache\s+[1-9]\d*\s+`, out))
		out = d.MustDocker(t, "system", "df", "-v")
		assert.Check(t, is.Contains(out, "exec.cachemount"))

		status, body := d.Request(t, "POST", "/build/prune?keep-storage=abc", "", "")
		assert.Check(t, is.Equal(status, 400))
		assert.Check(t, is.Contains(body, "keep-storage is in bytes and expects an integer, got abc"))

		since := time.Now()
		rep, err := c.BuildCachePrune(ctx, build.CachePruneOptions{Filters: filters.NewArgs(filters.Arg("type", "exec.cachemount"))})
		assert.NilError(t, err)
		assert.Check(t, is.Len(rep.CachesDeleted, 1), "only the cache mount: %v", rep.CachesDeleted)
		assert.Check(t, rep.SpaceReclaimed > 0)

		out = d.MustDocker(t, "builder", "prune", "-af")
		assert.Check(t, is.Contains(out, "Total reclaimed space:"))
		du, err = c.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.BuildCacheObject}})
		assert.NilError(t, err)
		for _, r := range du.BuildCache {
			assert.Check(t, r.InUse, "only records in use survive prune --all: %+v", r)
		}

		evs := d.MustDocker(t, "events", "--since", since.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano), "--filter", "type=builder", "--format", "{{.Action}} {{.Actor.Attributes.reclaimed}}")
		lines := strings.Split(evs, "\n")
		assert.Check(t, is.Len(lines, 2), evs)
		assert.Check(t, strings.HasPrefix(lines[0], "prune ") && lines[0] != "prune 0", evs)

		// docker system prune takes BuildKit's cache with it.
		goClientBuild(t, c, dir, build.ImageBuildOptions{Target: "base", BuildArgs: map[string]*string{"GREETING": ptr("system")}})
		out = d.MustDocker(t, "system", "prune", "-af")
		assert.Check(t, is.Contains(out, "Deleted build cache objects:"))
		du, err = c.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.BuildCacheObject}})
		assert.NilError(t, err)
		assert.Check(t, is.Len(du.BuildCache, 0))
	})
}

func ptr(s string) *string { return &s }

// goClientBuild builds dir through the moby client with a BuildKit session whose filesync serves dir,
// dialed through the client's DialHijack on /session, and returns the image ID.
func goClientBuild(t *testing.T, c *client.Client, dir string, opts build.ImageBuildOptions) string {
	t.Helper()
	id, err := goClientBuildErr(t, c, dir, opts)
	assert.NilError(t, err)
	return id
}

func goClientBuildErr(t *testing.T, c *client.Client, dir string, opts build.ImageBuildOptions) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := session.NewSession(ctx, "")
	if err != nil {
		return "", err
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return "", err
	}
	s.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource{"context": fs, "dockerfile": fs}))
	go func() {
		_ = s.Run(ctx, func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return c.DialHijack(ctx, "/session", proto, meta)
		})
	}()
	defer s.Close()
	opts.Version = build.BuilderBuildKit
	opts.SessionID = s.ID()
	opts.RemoteContext = "client-session"
	resp, err := c.ImageBuild(ctx, nil, opts)
	if err != nil {
		return "", err
	}
	id, msg := readBuildStream(t, resp.Body)
	if msg != "" {
		return "", &buildError{msg}
	}
	return id, nil
}

type buildError struct{ msg string }

func (e *buildError) Error() string { return e.msg }

// readBuildStream reads a version=2 response: trace messages (base64 StatusResponse), the image ID, or an
// error message.
func readBuildStream(t *testing.T, r io.ReadCloser) (id, errMsg string) {
	t.Helper()
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	traces := 0
	for sc.Scan() {
		var m struct {
			ID    string          `json:"id"`
			Aux   json.RawMessage `json:"aux"`
			Error string          `json:"error"`
		}
		assert.NilError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		switch {
		case m.Error != "":
			errMsg = m.Error
		case m.ID == "moby.buildkit.trace":
			var b []byte
			assert.NilError(t, json.Unmarshal(m.Aux, &b), "trace aux is base64: %s", m.Aux)
			traces++
		case m.ID == "moby.image.id":
			var v struct{ ID string }
			assert.NilError(t, json.Unmarshal(m.Aux, &v))
			id = v.ID
		}
	}
	assert.Check(t, traces > 0 || errMsg != "", "no moby.buildkit.trace messages")
	return id, errMsg
}

func tarContext(t *testing.T, files map[string]string) io.Reader {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return &b
}
