package build

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berthd/berthd/api/server/httputils"
	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/berthd/berthd/api/types/image"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type cacheBackend struct {
	built     *buildtypes.Options
	cancelled string
	pruned    *buildtypes.PruneOptions
}

func (c *cacheBackend) Build(ctx context.Context, opts buildtypes.Options, body io.Reader, out func(image.JSONMessage)) (string, error) {
	c.built = &opts
	return "sha256:y", nil
}

func (c *cacheBackend) Cancel(ctx context.Context, id string) error {
	c.cancelled = id
	return nil
}

func (c *cacheBackend) Prune(ctx context.Context, opts buildtypes.PruneOptions) (buildtypes.CachePruneReport, error) {
	c.pruned = &opts
	return buildtypes.CachePruneReport{CachesDeleted: []string{"a"}, SpaceReclaimed: 3}, nil
}

func TestParseBuildKitOptions(t *testing.T) {
	o, err := parse(t, `version=2&session=s&buildid=b&remote=client-session&cachefrom=["a:1"]&outputs=[{"Type":"local","Attrs":{"dest":"/x"}}]`)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(o.Version, "2"))
	assert.Check(t, is.Equal(o.SessionID, "s"))
	assert.Check(t, is.Equal(o.BuildID, "b"))
	assert.Check(t, is.DeepEqual(o.CacheFrom, []string{"a:1"}))
	assert.Check(t, is.DeepEqual(o.Outputs, []buildtypes.Output{{Type: "local", Attrs: map[string]string{"dest": "/x"}}}))

	for q, want := range map[string]string{
		`version=2&outputs=[{"Type":"local"},{"Type":"tar"}]`: "multiple outputs not supported",
		"version=2&outputs={":        "invalid outputs",
		`outputs=[{"Type":"local"}]`: "the outputs option is not supported by berthd's classic builder",
	} {
		_, err := parse(t, q)
		assert.Check(t, is.ErrorContains(err, want), q)
	}
}

func TestBuildKitRoutes(t *testing.T) {
	r := NewRouter(&backend{}, nil).(*buildRouter)
	err := r.postBuild(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/build?version=2", nil))
	assert.Check(t, is.ErrorContains(err, "BuildKit (version=2) is not running"))

	cb := &cacheBackend{}
	r = NewRouter(&backend{}, nil, WithBuildKit(cb)).(*buildRouter)
	assert.NilError(t, r.postBuild(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/build?version=2&t=x", nil)))
	assert.Assert(t, cb.built != nil)
	assert.Check(t, is.DeepEqual(cb.built.Tags, []string{"x"}))

	assert.NilError(t, r.postCancel(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/build/cancel?id=job", nil)))
	assert.Check(t, is.Equal(cb.cancelled, "job"))

	req := httptest.NewRequest(http.MethodPost, `/build/prune?all=1&keep-storage=5&reserved-space=7&max-used-space=9&min-free-space=11&filters={"type":{"regular":true}}`, nil)
	w := httptest.NewRecorder()
	assert.NilError(t, r.postPrune(w, req.WithContext(httputils.WithVersion(req.Context(), "1.48"))))
	assert.Check(t, is.DeepEqual(*cb.pruned, buildtypes.PruneOptions{All: true, ReservedSpace: 7, MaxUsedSpace: 9, MinFreeSpace: 11, Filters: map[string][]string{"type": {"regular"}}}))
	assert.Check(t, is.Equal(w.Body.String(), `{"CachesDeleted":["a"],"SpaceReclaimed":3}`+"\n"))

	// Before API 1.48 only keep-storage exists.
	req = httptest.NewRequest(http.MethodPost, `/build/prune?keep-storage=5&reserved-space=7&max-used-space=9`, nil)
	assert.NilError(t, r.postPrune(httptest.NewRecorder(), req.WithContext(httputils.WithVersion(req.Context(), "1.47"))))
	assert.Check(t, is.DeepEqual(*cb.pruned, buildtypes.PruneOptions{ReservedSpace: 5, Filters: map[string][]string{}}))

	err = r.postPrune(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, `/build/prune?filters={"colour":{"red":true}}`, nil))
	assert.Check(t, is.ErrorContains(err, "colour"))
}
