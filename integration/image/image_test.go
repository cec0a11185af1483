// Package image holds the image area's end-to-end tests: a real berthd driven by the docker CLI and the
// moby Go client, with test images built offline by hack/mkimage and a local docker-registry.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/berthd/berthd/hack/mkimage"
	"github.com/berthd/berthd/integration/internal/daemon"
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

func (c cli) fails(msg string, args ...string) {
	c.t.Helper()
	r := c.d.Docker(c.t, args...)
	assert.Check(c.t, r.ExitCode != 0, "docker %v: %s", args, r.Combined())
	assert.Check(c.t, is.Contains(r.Stderr, msg), "docker %v", args)
}

// startBusybox starts a berthd with busybox:latest loaded.
func startBusybox(t *testing.T) (*daemon.Daemon, cli) {
	t.Helper()
	d := daemon.NewWithBusybox(t)
	return d, cli{t, d}
}

func fixtures(t *testing.T) (rootfs, save string) {
	dir := t.TempDir()
	rootfs, save = filepath.Join(dir, "rootfs.tar"), filepath.Join(dir, "busybox.tar")
	var a, b bytes.Buffer
	testenv.NoError(t, mkimage.BusyboxRootFS(&a), "building the busybox rootfs")
	img, err := mkimage.BusyboxImage("busybox:latest")
	assert.NilError(t, err)
	assert.NilError(t, mkimage.WriteSave(&b, []mkimage.Image{img}))
	assert.NilError(t, os.WriteFile(rootfs, a.Bytes(), 0o644))
	assert.NilError(t, os.WriteFile(save, b.Bytes(), 0o644))
	return rootfs, save
}

var idRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestImportLoadSaveTagRmi(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := cli{t, d}
	rootfs, save := fixtures(t)
	start := time.Now().Add(-time.Second)

	// import from a file and from stdin, with changes
	id1 := c.ok("import", rootfs, "imp:1")
	assert.Assert(t, idRe.MatchString(id1), id1)
	data, _ := os.ReadFile(rootfs)
	id2 := c.okIn(data, "import", "-c", `CMD ["/bin/echo","hi"]`, "-c", "ENV FOO=bar", "-", "imp:2")
	assert.Assert(t, idRe.MatchString(id2), id2)
	var cfg struct{ Cmd, Env []string }
	assert.NilError(t, json.Unmarshal([]byte(c.ok("image", "inspect", "-f", "{{json .Config}}", "imp:2")), &cfg))
	assert.DeepEqual(t, cfg.Cmd, []string{"/bin/echo", "hi"})
	assert.DeepEqual(t, cfg.Env, []string{"FOO=bar"})

	// load a docker-save archive
	assert.Equal(t, c.ok("load", "-i", save), "Loaded image: busybox:latest")
	assert.DeepEqual(t, lines(c.ok("images", "--format", "{{.Repository}}:{{.Tag}}")), []string{"imp:2", "imp:1", "busybox:latest"})
	hist := lines(c.ok("history", "-q", "busybox"))
	assert.Check(t, is.Len(hist, 3))
	assert.Equal(t, c.ok("image", "inspect", "-f", "{{len .RootFS.Layers}}", "busybox"), "3")

	// tag and rmi rules
	c.ok("tag", "busybox", "busybox:two")
	c.ok("tag", "busybox", "other/bb:1")
	c.fails("invalid reference format", "tag", "busybox", "UPPER")
	c.fails("No such image: nope", "tag", "nope", "x")
	bbID := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox")
	c.fails("image is referenced in multiple repositories", "rmi", bbID[7:19])
	assert.Equal(t, c.ok("rmi", "busybox:two"), "Untagged: busybox:two")
	assert.Equal(t, c.ok("rmi", "other/bb:1"), "Untagged: other/bb:1")
	c.fails("No such image: nope", "rmi", "nope")

	// save and load back after deleting
	out := filepath.Join(t.TempDir(), "out.tar")
	c.ok("save", "-o", out, "busybox", "imp:2")
	rm := lines(c.ok("rmi", "busybox", "imp:2"))
	assert.DeepEqual(t, rm, []string{"Untagged: busybox:latest", "Deleted: " + bbID, "Untagged: imp:2", "Deleted: " + id2})
	assert.DeepEqual(t, lines(c.ok("load", "-i", out)), []string{"Loaded image: busybox:latest", "Loaded image: imp:2"})
	assert.Equal(t, c.ok("image", "inspect", "-f", "{{.Id}}", "busybox"), bbID)

	// filters and formats
	assert.DeepEqual(t, lines(c.ok("images", "-q", "--filter", "reference=imp")), []string{id2[7:19], id1[7:19]})
	assert.DeepEqual(t, lines(c.ok("images", "-q", "--filter", "label=org.berthd.test=busybox")), []string{bbID[7:19]})
	assert.DeepEqual(t, lines(c.ok("images", "-q", "--filter", "before=imp:2")), []string{id1[7:19], bbID[7:19]})
	assert.DeepEqual(t, lines(c.ok("images", "-q", "--filter", "since=imp:1")), []string{id2[7:19]})
	assert.Equal(t, len(lines(c.ok("images", "--digests", "-a"))), 4)

	// a moved tag leaves a dangling image; prune removes it, prune -a the rest
	id3 := c.okIn(data, "import", "-c", "CMD sh", "-", "imp:1")
	assert.Assert(t, id3 != id1)
	assert.DeepEqual(t, lines(c.ok("images", "-q", "--filter", "dangling=true")), []string{id1[7:19]})
	pr := c.ok("image", "prune", "-f")
	assert.Check(t, is.Contains(pr, "deleted: "+id1))
	assert.DeepEqual(t, lines(c.ok("images", "-q", "--filter", "dangling=true")), []string(nil))
	pr = c.ok("image", "prune", "-a", "-f")
	assert.Check(t, is.Contains(pr, "untagged: busybox:latest"))
	assert.DeepEqual(t, lines(c.ok("images", "-q")), []string(nil))

	evs := c.ok("events", "--since", strconv.FormatInt(start.Unix(), 10), "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "type=image", "--format", "{{.Action}}")
	seen := map[string]bool{}
	for _, a := range lines(evs) {
		seen[a] = true
	}
	for _, a := range []string{"import", "load", "tag", "untag", "delete", "save"} {
		assert.Check(t, seen[a], "no %q event in %v", a, lines(evs))
	}
}

func TestBadArchives(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := cli{t, d}
	_, save := fixtures(t)
	data, _ := os.ReadFile(save)
	dir := t.TempDir()

	trunc := filepath.Join(dir, "trunc.tar")
	assert.NilError(t, os.WriteFile(trunc, data[:len(data)/2], 0o644))
	r := d.Docker(t, "load", "-i", trunc)
	assert.Check(t, r.ExitCode != 0, r.Combined())
	assert.Check(t, is.Contains(r.Stderr, "invalid"), r.Stderr)

	garbage := filepath.Join(dir, "garbage.tar")
	assert.NilError(t, os.WriteFile(garbage, bytes.Repeat([]byte("not a tar "), 1000), 0o644))
	c.fails("invalid", "load", "-i", garbage)
	c.fails("invalid", "import", garbage, "x:1")

	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../../etc/evil", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	ev := filepath.Join(dir, "evil.tar")
	assert.NilError(t, os.WriteFile(ev, evil.Bytes(), 0o644))
	c.fails("escapes the root filesystem", "import", ev, "evil:1")
	_, err := os.Stat("/etc/evil")
	assert.Check(t, os.IsNotExist(err))

	// a traversal entry inside a layer of a docker-save archive
	var evilSave bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&evilSave, []mkimage.Image{{RepoTags: []string{"evil:2"}, Layers: [][]mkimage.File{{{Name: "../../../etc/evil2", Body: []byte("x")}}}}}))
	es := filepath.Join(dir, "evil-save.tar")
	assert.NilError(t, os.WriteFile(es, evilSave.Bytes(), 0o644))
	c.fails("escapes the root filesystem", "load", "-i", es)

	// status codes through the Go client: 400-class, never 500
	cl := d.Client(t)
	resp, err := cl.ImageLoad(context.Background(), bytes.NewReader(data[:len(data)/3]))
	if err == nil {
		resp.Body.Close()
	}
	assert.Check(t, err != nil && !strings.Contains(err.Error(), "500"), "%v", err)
	assert.DeepEqual(t, lines(c.ok("images", "-q")), []string(nil))
}

func TestPushPullRegistry(t *testing.T) {
	reg := regtest.StartRegistry(t, "", "")
	_, c := startBusybox(t)
	c.ok("tag", "busybox", reg+"/bb:v1")
	out := c.ok("push", reg+"/bb:v1")
	assert.Check(t, is.Contains(out, "The push refers to repository ["+reg+"/bb]"))
	assert.Check(t, regexp.MustCompile(`v1: digest: sha256:[0-9a-f]{64} size: \d+`).MatchString(out), out)

	d2 := daemon.New(t)
	d2.Start(t)
	c2 := cli{t, d2}
	out = c2.ok("pull", reg+"/bb:v1")
	assert.Check(t, is.Contains(out, "v1: Pulling from bb"))
	assert.Check(t, is.Contains(out, "Status: Downloaded newer image for "+reg+"/bb:v1"))
	assert.Equal(t, c2.ok("image", "inspect", "-f", "{{.Id}}", reg+"/bb:v1"), c.ok("image", "inspect", "-f", "{{.Id}}", "busybox"))
	assert.Check(t, is.Len(lines(c2.ok("images", "--digests", "--format", "{{.Digest}}")), 1))
	c2.fails("manifest for "+reg+"/bb:nope not found: manifest unknown: manifest unknown", "pull", reg+"/bb:nope")
	c2.fails("connection refused", "pull", "127.0.0.1:1/bb:v1")
	c2.fails("An image does not exist locally with the tag: "+reg+"/none", "push", reg+"/none:v1")
}

func TestPushPullAuth(t *testing.T) {
	reg := regtest.StartRegistry(t, "alice", "s3cret")
	d, c := startBusybox(t)
	c.ok("tag", "busybox", reg+"/private:1")
	r := d.Docker(t, "push", reg+"/private:1")
	assert.Check(t, r.ExitCode != 0, r.Combined())
	r = d.Docker(t, "login", "-u", "alice", "-p", "wrong", reg)
	assert.Check(t, r.ExitCode != 0, r.Combined())
	assert.Check(t, is.Contains(r.Stderr, "401"), r.Stderr)
	assert.Check(t, is.Contains(c.ok("login", "-u", "alice", "-p", "s3cret", reg), "Login Succeeded"))
	c.ok("push", reg+"/private:1")
	c.ok("logout", reg)

	// Credentials as `docker login` stores them; the CLI sends them in X-Registry-Auth.
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	cfg := `{"auths":{"` + reg + `":{"auth":"` + auth + `"}}}`
	assert.NilError(t, os.WriteFile(filepath.Join(d.Dir, "docker-config", "config.json"), []byte(cfg), 0o600))
	c.ok("push", reg+"/private:1")

	d2 := daemon.New(t)
	d2.Start(t)
	c2 := cli{t, d2}
	c2.fails("pull access denied for "+reg+"/private", "pull", reg+"/private:1")
	assert.NilError(t, os.WriteFile(filepath.Join(d2.Dir, "docker-config", "config.json"), []byte(cfg), 0o600))
	c2.ok("pull", reg+"/private:1")
}

// TestRoundTripWithDockerd: berthd's `docker save` loads into Debian's dockerd, and dockerd's save of it
// loads back into berthd with the same image ID.
func TestRoundTripWithDockerd(t *testing.T) {
	refSock := testenv.StartDockerd(t)
	_, c := startBusybox(t)
	id := c.ok("image", "inspect", "-f", "{{.Id}}", "busybox")
	dir := t.TempDir()
	out := filepath.Join(dir, "berth.tar")
	c.ok("save", "-o", out, "busybox")

	refDocker := func(args ...string) string {
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+refSock, "DOCKER_CONFIG="+dir)
		b, err := cmd.CombinedOutput()
		assert.NilError(t, err, "dockerd: docker %v: %s", args, b)
		return strings.TrimSpace(string(b))
	}
	assert.Equal(t, refDocker("load", "-i", out), "Loaded image: busybox:latest")
	assert.Equal(t, refDocker("image", "inspect", "-f", "{{.Id}}", "busybox"), id)
	back := filepath.Join(dir, "ref.tar")
	refDocker("save", "-o", back, "busybox")

	c.ok("rmi", "busybox")
	assert.Equal(t, c.ok("load", "-i", back), "Loaded image: busybox:latest")
	assert.Equal(t, c.ok("image", "inspect", "-f", "{{.Id}}", "busybox"), id)
	assert.Equal(t, c.ok("history", "-q", "busybox"), refDocker("history", "-q", "busybox"))
}
