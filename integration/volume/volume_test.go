// Package volume holds the volume subsystem's end-to-end tests: a real berthd driven by the docker CLI,
// the moby Go client and raw HTTP.
package volume

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestVolumeCommands(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	docker := func(args ...string) daemon.Result { t.Helper(); return d.Docker(t, args...) }
	ok := func(args ...string) string {
		t.Helper()
		r := docker(args...)
		assert.Equal(t, r.ExitCode, 0, "docker %v: %s", args, r.Combined())
		return strings.TrimSpace(r.Stdout)
	}
	fails := func(msg string, args ...string) {
		t.Helper()
		r := docker(args...)
		assert.Equal(t, r.ExitCode, 1, "docker %v: %s", args, r.Combined())
		assert.Check(t, is.Contains(r.Stderr, msg), "docker %v", args)
	}

	// create
	assert.Equal(t, ok("volume", "create", "v1"), "v1")
	assert.Equal(t, ok("volume", "create", "v1"), "v1")
	assert.Equal(t, ok("volume", "create", "--label", "env=prod", "--label", "team", "v2"), "v2")
	assert.Equal(t, ok("volume", "create", "-d", "local", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=64m", "tmp"), "tmp")
	anon := ok("volume", "create")
	assert.Assert(t, regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon), anon)
	fails("Error response from daemon: create x: volume name is too short, names should be at least two alphanumeric characters", "volume", "create", "x")
	fails(`Error response from daemon: create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, "volume", "create", "a/b")
	fails(`Error response from daemon: create v3: invalid option: "foo"`, "volume", "create", "-o", "foo=bar", "v3")
	fails(`Error response from daemon: create v3: missing required option: "type"`, "volume", "create", "-o", "device=tmpfs", "v3")
	fails(`Error response from daemon: create v1: error looking up volume plugin nodrv: plugin "nodrv" not found`, "volume", "create", "-d", "nodrv", "v1")
	fails(`Error response from daemon: create v4: error looking up volume plugin nodrv: plugin "nodrv" not found`, "volume", "create", "-d", "nodrv", "v4")
	_, err := os.Stat(filepath.Join(d.Root, "volumes", "v3"))
	assert.Assert(t, os.IsNotExist(err), "a refused create leaves nothing behind")

	// ls
	out := ok("volume", "ls")
	want := []string{"DRIVER    VOLUME NAME"}
	for _, n := range sortedNames(anon, "tmp", "v1", "v2") {
		want = append(want, "local     "+n)
	}
	assert.DeepEqual(t, lines(out), want)
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q")), sortedNames(anon, "tmp", "v1", "v2"))
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q", "--filter", "name=v")), []string{"v1", "v2"})
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q", "--filter", "label=env=prod")), []string{"v2"})
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q", "--filter", "label=team")), []string{"v2"})
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q", "--filter", "driver=local", "--filter", "name=tmp")), []string{"tmp"})
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q", "--filter", "dangling=true")), sortedNames(anon, "tmp", "v1", "v2"))
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q", "--filter", "dangling=false")), []string(nil))
	// The CLI joins labels in Go map order, so compare them as a set.
	row := ok("volume", "ls", "--format", "{{.Name}}:{{.Driver}}:{{.Labels}}", "--filter", "name=v2")
	parts := strings.SplitN(strings.TrimSpace(row), ":", 3)
	assert.Assert(t, len(parts) == 3, row)
	assert.DeepEqual(t, parts[:2], []string{"v2", "local"})
	labels := strings.Split(parts[2], ",")
	sort.Strings(labels)
	assert.DeepEqual(t, labels, []string{"env=prod", "team="})
	fails("nvalid filter 'bogus'", "volume", "ls", "--filter", "bogus=1")
	fails("nvalid filter 'dangling=maybe'", "volume", "ls", "--filter", "dangling=maybe")

	// inspect
	var vols []map[string]any
	assert.NilError(t, json.Unmarshal([]byte(ok("volume", "inspect", "v2", "tmp")), &vols))
	assert.Equal(t, len(vols), 2)
	assert.Equal(t, vols[0]["Mountpoint"], filepath.Join(d.Root, "volumes", "v2", "_data"))
	assert.DeepEqual(t, vols[0]["Labels"], map[string]any{"env": "prod", "team": ""})
	assert.Equal(t, vols[0]["Scope"], "local")
	assert.Equal(t, vols[0]["Options"], nil)
	assert.DeepEqual(t, vols[1]["Options"], map[string]any{"type": "tmpfs", "device": "tmpfs", "o": "size=64m"})
	assert.Assert(t, vols[0]["CreatedAt"] != "")
	assert.Equal(t, ok("volume", "inspect", "--format", "{{.Labels}}", anon), "map[com.docker.volume.anonymous:]")
	fails("Error response from daemon: get nope: no such volume", "volume", "inspect", "nope")

	// rm
	fails("Error response from daemon: get nope: no such volume", "volume", "rm", "nope")
	assert.Equal(t, ok("volume", "rm", "-f", "nope"), "nope")
	assert.Equal(t, ok("volume", "rm", "v1"), "v1")
	_, err = os.Stat(filepath.Join(d.Root, "volumes", "v1"))
	assert.Assert(t, os.IsNotExist(err))

	// prune: anonymous only by default, everything unused with -a; options-backed volumes never.
	out = ok("volume", "prune", "-f")
	assert.Assert(t, is.Contains(out, "Deleted Volumes:\n"+anon))
	assert.Assert(t, is.Contains(out, "Total reclaimed space:"))
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q")), []string{"tmp", "v2"})
	out = ok("volume", "prune", "-f", "-a", "--filter", "label=env=dev")
	assert.Assert(t, !strings.Contains(out, "v2"))
	out = ok("volume", "prune", "-f", "-a", "--filter", "label=env=prod")
	assert.Assert(t, is.Contains(out, "v2"))
	assert.DeepEqual(t, lines(ok("volume", "ls", "-q")), []string{"tmp"})
	fails("nvalid filter 'bogus'", "volume", "prune", "-f", "--filter", "bogus=1")

	// /info lists the local driver.
	assert.Equal(t, ok("info", "--format", "{{.Plugins.Volume}}"), "[local]")
}

func sortedNames(n ...string) []string {
	sort.Strings(n)
	return n
}

func TestDataLabelsOptionsSurviveRestart(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	ctx := context.Background()
	c := d.Client(t)
	v, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: "keep", Labels: map[string]string{"a": "b"}})
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(v.Mountpoint, "data"), []byte("hello"), 0o644))
	_, err = c.VolumeCreate(ctx, volume.CreateOptions{Name: "opts", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}})
	assert.NilError(t, err)

	d.Restart(t)
	c = d.Client(t)
	got, err := c.VolumeInspect(ctx, "keep")
	assert.NilError(t, err)
	assert.DeepEqual(t, got.Labels, map[string]string{"a": "b"})
	assert.Equal(t, got.CreatedAt, v.CreatedAt)
	b, err := os.ReadFile(filepath.Join(got.Mountpoint, "data"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "hello")
	got, err = c.VolumeInspect(ctx, "opts")
	assert.NilError(t, err)
	assert.DeepEqual(t, got.Options, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
}

func TestPruneByAPIVersion(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	ctx := context.Background()
	mk := func() {
		c := d.Client(t)
		_, err := c.VolumeCreate(ctx, volume.CreateOptions{Name: "named"})
		assert.NilError(t, err)
		_, err = c.VolumeCreate(ctx, volume.CreateOptions{})
		assert.NilError(t, err)
	}
	mk()
	rep, err := d.ClientAt(t, "1.45").VolumesPrune(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, len(rep.VolumesDeleted), 1)
	assert.Assert(t, rep.VolumesDeleted[0] != "named")

	rep, err = d.ClientAt(t, "1.41").VolumesPrune(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.DeepEqual(t, rep.VolumesDeleted, []string{"named"})

	mk()
	rep, err = d.ClientAt(t, "1.45").VolumesPrune(ctx, filters.NewArgs(filters.Arg("all", "true")))
	assert.NilError(t, err)
	assert.Equal(t, len(rep.VolumesDeleted), 2)

	// The CLI at API 1.41 prunes named volumes too.
	mk()
	cmd := exec.Command("docker", "volume", "prune", "-f")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_API_VERSION=1.41", "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
	assert.Assert(t, is.Contains(string(out), "named"))
}

func TestBadRequests(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	post := func(path, ctype, body string) (int, string) {
		t.Helper()
		return d.Request(t, "POST", path, ctype, body)
	}
	for _, c := range []struct{ ctype, body, msg string }{
		{"text/plain", `{"Name":"x1"}`, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"application/json", `{"Name":`, "invalid JSON"},
		{"application/json", `{"Name":"a1"}{"Name":"b1"}`, "unexpected content after JSON"},
		{"application/json", `{"Labels":["x"]}`, "invalid JSON"},
		{"application/json", `{"Name":"../../etc"}`, "includes invalid characters"},
		{"application/json", `{"Name":"ok1","DriverOpts":{"nope":"1"}}`, `invalid option: \"nope\"`},
	} {
		code, body := post("/v1.45/volumes/create", c.ctype, c.body)
		assert.Equal(t, code, 400, "%s %s: %s", c.ctype, c.body, body)
		assert.Check(t, is.Contains(body, c.msg))
	}
	code, body := post("/v1.45/volumes/create", "", "")
	assert.Equal(t, code, 201, body)
	code, _ = post("/v1.45/volumes/prune?filters=notjson", "", "")
	assert.Equal(t, code, 400)
	code, _ = d.Request(t, "GET", "/v1.45/volumes?filters=%7B%22x%22%3A%5B%221%22%5D%7D", "", "")
	assert.Equal(t, code, 400)
	_, err := d.Client(t).VolumeInspect(context.Background(), "nope")
	assert.Assert(t, errdefs.IsNotFound(err))
}
