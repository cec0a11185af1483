package image

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	imagetypes "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const hex64 = "0123456789012345678901234567890123456789012345678901234567890123"

// TestReferenceGrammar: every name a client gives goes through the reference grammar, with dockerd's
// status (400) and wording, and nothing is named when it is refused.
func TestReferenceGrammar(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	c := cli{t, d}
	_, save := fixtures(t)
	c.ok("load", "-i", save)
	before := c.ok("images", "--format", "{{.Repository}}:{{.Tag}}")

	c.fails("Error response from daemon: invalid reference format: repository name must be lowercase", "tag", "busybox", "UPPER/x")

	// The moby client checks some names itself: ask the API directly.
	post := func(path string) (int, string) {
		t.Helper()
		resp, err := d.HTTPClient().Post("http://d/v1.45"+path, "", nil)
		assert.NilError(t, err)
		defer resp.Body.Close()
		var body struct{ Message string }
		assert.NilError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body.Message
	}
	for _, tc := range []struct{ query, msg string }{
		{"repo=UPPER/x", "invalid reference format: repository name must be lowercase"},
		{"repo=Up&tag=a", "invalid reference format: repository name must be lowercase"},
		{"repo=x:-bad", "invalid reference format"},
		{"repo=", "invalid reference format"},
		{"repo=sha256:" + hex64, "refusing to create an ambiguous tag using digest algorithm as name"},
		{"repo=" + hex64, "invalid repository name (" + hex64 + "), cannot specify 64-byte hexadecimal strings"},
		{"repo=x@sha256:" + hex64, "refusing to create a tag with a digest reference"},
		// A tag that looks like a digest is not a tag.
		{"repo=x&tag=sha256:" + hex64, "invalid tag format"},
		{"repo=x&tag=A@b", "invalid tag format"},
	} {
		code, msg := post("/images/busybox/tag?" + tc.query)
		assert.Check(t, is.Equal(code, http.StatusBadRequest), tc.query)
		assert.Check(t, is.Equal(msg, tc.msg), tc.query)
	}
	cl := d.Client(t)
	ctx := context.Background()
	// Tags may have upper case, and 64 hex digits make a valid tag.
	c.ok("tag", "busybox", "x:Upper")
	c.ok("tag", "busybox", "x:"+hex64)

	// pull, push, import, commit and create refuse the same names before doing anything.
	_, err := cl.ImagePull(ctx, "UPPER/x:latest", imagetypes.PullOptions{})
	assert.Check(t, errdefs.IsInvalidParameter(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "invalid reference format: repository name must be lowercase"))
	c.fails("invalid reference format: repository name must be lowercase", "push", "UPPER/x")
	c.fails("invalid reference format: repository name must be lowercase", "import", save, "UPPER/x")
	c.fails("refusing to create an ambiguous tag using digest algorithm as name", "import", save, "sha256:"+hex64)
	for _, img := range []string{"UPPER/x", "x:-bad"} {
		_, err = cl.ContainerCreate(ctx, &container.Config{Image: img}, nil, nil, nil, "")
		assert.Check(t, errdefs.IsInvalidParameter(err), "%s: %v", img, err)
	}
	_, err = cl.ContainerCreate(ctx, &container.Config{Image: "UPPER/x"}, nil, nil, nil, "")
	assert.Check(t, is.ErrorContains(err, "invalid reference format: repository name must be lowercase"))
	id := c.ok("create", "busybox", "true")
	c.fails("invalid reference format: repository name must be lowercase", "commit", id, "UPPER/x")
	c.fails("refusing to create an ambiguous tag using digest algorithm as name", "commit", id, "sha256:"+hex64)
	code, msg := post("/commit?container=" + id + "&repo=x@sha256:" + hex64)
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Equal(msg, "refusing to create a tag with a digest reference"))
	code, msg = post("/images/create?fromSrc=-&repo=x@sha256:" + hex64)
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Equal(msg, "cannot import digest reference"))
	code, msg = post("/images/x@sha256:" + hex64 + "/push")
	assert.Check(t, is.Equal(code, http.StatusBadRequest))
	assert.Check(t, is.Equal(msg, "cannot push a digest reference"))

	after := lines(c.ok("images", "--format", "{{.Repository}}:{{.Tag}}"))
	sort.Strings(after)
	assert.DeepEqual(t, after, []string{before, "x:" + hex64, "x:Upper"})
}

// TestImagesReferenceFilter: `docker images REPO` and --filter reference= list only the names that
// match, with dockerd's wildcards (on the familiar name and on name:tag) and several references ORed.
func TestImagesReferenceFilter(t *testing.T) {
	d, c := startBusybox(t)
	c.ok("tag", "busybox", "busybox:two")
	c.ok("tag", "busybox", "other/app:1")
	c.ok("tag", "busybox", "localhost:5000/team/app:v1")
	// Sorted: the CLI groups an image's tags by repository in a map, so rows of one image's repositories
	// come in any order (with dockerd too).
	list := func(args ...string) []string {
		out := lines(c.ok(append([]string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, args...)...))
		sort.Strings(out)
		return out
	}
	assert.DeepEqual(t, list("busybox"), []string{"busybox:latest", "busybox:two"})
	assert.DeepEqual(t, list("busybox:latest"), []string{"busybox:latest"})
	assert.DeepEqual(t, list("bu*"), []string{"busybox:latest", "busybox:two"})
	assert.DeepEqual(t, list("busybox:t*"), []string{"busybox:two"})
	assert.DeepEqual(t, list("other/*"), []string{"other/app:1"})
	assert.DeepEqual(t, list("*/app"), []string{"other/app:1"})
	assert.DeepEqual(t, list("localhost:5000/*/app"), []string{"localhost:5000/team/app:v1"})
	assert.DeepEqual(t, list("nothing"), []string(nil))
	assert.DeepEqual(t, list("--filter", "reference=other/app", "--filter", "reference=busybox:two"), []string{"busybox:two", "other/app:1"})
	assert.DeepEqual(t, list("--filter", "reference=busybox"), []string{"busybox:latest", "busybox:two"})

	cl := d.Client(t)
	sums, err := cl.ImageList(context.Background(), imagetypes.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", "other/app"))})
	assert.NilError(t, err)
	assert.Assert(t, is.Len(sums, 1))
	assert.DeepEqual(t, sums[0].RepoTags, []string{"other/app:1"})
	_, err = cl.ImageList(context.Background(), imagetypes.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", "["))})
	assert.Check(t, errdefs.IsInvalidParameter(err), "%v", err)
}
