package volume

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestCreateRefusesBadInput: bodies dockerd refuses are 400 with its wording and create nothing (no
// anonymous volume from a form-typed body); a name no directory can have is a 400 naming the limit, not a
// 500 from mkdir.
func TestCreateRefusesBadInput(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	post := func(ctype, body string) (int, string) {
		t.Helper()
		return d.Request(t, http.MethodPost, "/v1.45/volumes/create", ctype, body)
	}

	code, body := post("application/x-www-form-urlencoded", "{bad")
	assert.Check(t, is.Equal(code, http.StatusBadRequest), body)
	assert.Check(t, is.Contains(body, "unsupported Content-Type header (application/x-www-form-urlencoded): must be 'application/json'"))
	code, body = post("application/json", "{bad")
	assert.Check(t, is.Equal(code, http.StatusBadRequest), body)
	assert.Check(t, is.Contains(body, "invalid JSON"))
	code, body = post("application/json", `{"Name":"x1"}}`)
	assert.Check(t, is.Equal(code, http.StatusBadRequest), body)
	assert.Check(t, is.Contains(body, "unexpected content after JSON"))

	c := d.Client(t)
	_, err := c.VolumeCreate(context.Background(), volume.CreateOptions{Name: strings.Repeat("a", 10000)})
	assert.Check(t, errdefs.IsInvalidParameter(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "volume name is too long (10000 characters): names may be at most 255 characters"))
	v, err := c.VolumeCreate(context.Background(), volume.CreateOptions{Name: strings.Repeat("b", 255)})
	assert.NilError(t, err, "the longest name a directory can have")
	assert.NilError(t, c.VolumeRemove(context.Background(), v.Name, false))

	list, err := c.VolumeList(context.Background(), volume.ListOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(list.Volumes, 0), "nothing was created: %v", list.Volumes)
	entries, err := os.ReadDir(filepath.Join(d.Root, "volumes"))
	assert.NilError(t, err)
	for _, e := range entries {
		// .trash is where removals happen; it is emptied as they finish.
		assert.Check(t, e.Name() == "metadata.db" || e.Name() == ".trash", "left on disk: %s", e.Name())
	}
	trash, _ := os.ReadDir(filepath.Join(d.Root, "volumes", ".trash"))
	assert.Check(t, is.Len(trash, 0))

	// An empty body is an anonymous volume (API >= 1.42 dockerd).
	code, body = post("", "")
	assert.Check(t, is.Equal(code, http.StatusCreated), body)
}
