package build

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/berthd/berthd/api/types/image"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func parse(t *testing.T, query string) (buildtypes.Options, error) {
	req := httptest.NewRequest(http.MethodPost, "/build?"+query, nil)
	req.Form = req.URL.Query()
	return parseOptions(req)
}

func TestParseOptions(t *testing.T) {
	o, err := parse(t, "t=a&t=b&dockerfile=D&q=1&nocache=True&pull=false&target=x&buildargs="+`{"A":"1","B":null}`+"&labels="+`{"l":"v"}`+"&memory=10&networkmode=none&platform=linux/amd64")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(o.Tags, []string{"a", "b"}))
	assert.Check(t, o.Quiet && o.NoCache && !o.Pull && o.Remove && !o.ForceRemove)
	assert.Check(t, is.Equal(*o.BuildArgs["A"], "1"))
	assert.Check(t, o.BuildArgs["B"] == nil)
	assert.Check(t, is.Equal(o.Labels["l"], "v"))
	assert.Check(t, is.Equal(o.Memory, int64(10)))
	assert.Check(t, is.Equal(o.NetworkMode, "none"))

	o, err = parse(t, "rm=0&forcerm=1&cachefrom=null&ulimits=null&outputs=")
	assert.NilError(t, err)
	assert.Check(t, o.Remove && o.ForceRemove)
	o, err = parse(t, `ulimits=[{"Name":"nofile","Soft":100,"Hard":200}]`)
	assert.NilError(t, err)
	assert.Check(t, is.Len(o.Ulimits, 1))

	for q, want := range map[string]string{
		"version=3":         `invalid version "3"`,
		"securityopt=x":     "security options are not supported on linux",
		"squash=1":          "squash is only supported with experimental mode",
		"isolation=hyperv":  `unsupported isolation: "hyperv"`,
		`cachefrom=["img"]`: "the cachefrom option is not supported",
		"buildargs={":       "error reading build args",
		"memory=abc":        "invalid value for memory: abc",
	} {
		_, err := parse(t, q)
		assert.Check(t, err != nil && strings.Contains(err.Error(), want), "%s: %v", q, err)
	}
}

type backend struct {
	msgs []image.JSONMessage
	err  error
}

func (b *backend) Build(ctx context.Context, opts buildtypes.Options, body io.Reader, out func(image.JSONMessage)) (string, error) {
	for _, m := range b.msgs {
		out(m)
	}
	return "sha256:x", b.err
}

type exitErr struct{}

func (exitErr) Error() string { return "The command 'x' returned a non-zero code: 4" }
func (exitErr) ExitCode() int { return 4 }

func TestStreamErrors(t *testing.T) {
	// Before anything was streamed an error is the response.
	r := NewRouter(&backend{err: errors.New("early")}, nil).(*buildRouter)
	w := httptest.NewRecorder()
	err := r.postBuild(w, httptest.NewRequest(http.MethodPost, "/build", nil))
	assert.Check(t, is.Error(err, "early"))

	// After, it is an errorDetail with the RUN's exit code; '>' is escaped as dockerd's encoder does.
	r = NewRouter(&backend{msgs: []image.JSONMessage{{Stream: " ---> x\n"}}, err: exitErr{}}, nil).(*buildRouter)
	w = httptest.NewRecorder()
	assert.NilError(t, r.postBuild(w, httptest.NewRequest(http.MethodPost, "/build", nil)))
	assert.Check(t, is.Equal(w.Body.String(), `{"stream":" ---\u003e x\n"}`+"\n"+`{"errorDetail":{"code":4,"message":"The command 'x' returned a non-zero code: 4"},"error":"The command 'x' returned a non-zero code: 4"}`+"\n"))
}

func TestCancel(t *testing.T) {
	r := NewRouter(&backend{}, nil).(*buildRouter)
	err := r.postCancel(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/build/cancel", nil))
	assert.Check(t, is.Error(err, "build ID not provided"))
	w := httptest.NewRecorder()
	assert.NilError(t, r.postCancel(w, httptest.NewRequest(http.MethodPost, "/build/cancel?id=x", nil)))
	assert.Check(t, is.Equal(w.Code, http.StatusOK))
}
