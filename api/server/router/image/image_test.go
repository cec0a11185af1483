package image

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/berthd/berthd/api/server"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/image"
	"gotest.tools/v3/assert"
)

type fakeBackend struct {
	calls []string
	auth  *image.AuthConfig
}

type nf struct{}

func (nf) Error() string { return "manifest for x:nope not found: manifest unknown: manifest unknown" }
func (nf) NotFound()     {}

func (f *fakeBackend) ImportImage(ctx context.Context, src io.Reader, srcURL, repo, tag, message string, changes []string, platform string, progress func(image.JSONMessage)) (string, error) {
	b, _ := io.ReadAll(src)
	f.calls = append(f.calls, "import "+repo+":"+tag+" "+string(b)+" "+strings.Join(changes, ","))
	progress(image.JSONMessage{Status: "sha256:abc"})
	return "sha256:abc", nil
}
func (f *fakeBackend) LoadImage(ctx context.Context, r io.Reader, quiet bool, progress func(image.JSONMessage)) error {
	progress(image.JSONMessage{Stream: "Loaded image: x:latest\n"})
	return nil
}
func (f *fakeBackend) ExportImages(ctx context.Context, names []string, w io.Writer) error {
	f.calls = append(f.calls, "save "+strings.Join(names, ","))
	if names[0] == "missing" {
		return nf{}
	}
	_, err := w.Write([]byte("TAR"))
	return err
}
func (f *fakeBackend) Images(ctx context.Context, opts image.ListOptions) ([]*image.Summary, error) {
	return nil, nil
}
func (f *fakeBackend) ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error) {
	f.calls = append(f.calls, "inspect "+name)
	return &image.InspectResponse{ID: "sha256:abc"}, nil
}
func (f *fakeBackend) ImageHistory(ctx context.Context, name string) ([]*image.HistoryResponseItem, error) {
	f.calls = append(f.calls, "history "+name)
	return nil, nil
}
func (f *fakeBackend) TagImage(ctx context.Context, name, repo, tag string) error {
	f.calls = append(f.calls, "tag "+name+" "+repo+" "+tag)
	return nil
}
func (f *fakeBackend) ImageDelete(ctx context.Context, name string, force, prune bool) ([]image.DeleteResponse, error) {
	f.calls = append(f.calls, "delete "+name)
	return []image.DeleteResponse{{Untagged: name}}, nil
}
func (f *fakeBackend) ImagesPrune(ctx context.Context, fl filters.Args) (*image.PruneReport, error) {
	return &image.PruneReport{}, nil
}
func (f *fakeBackend) PullImage(ctx context.Context, name, tag, platform string, auth *image.AuthConfig, progress func(image.JSONMessage)) error {
	f.calls = append(f.calls, "pull "+name+" "+tag)
	f.auth = auth
	if tag == "nope" {
		return nf{}
	}
	progress(image.JSONMessage{Status: "Pulling from x", ID: tag})
	return io.ErrUnexpectedEOF
}
func (f *fakeBackend) PushImage(ctx context.Context, name, tag string, auth *image.AuthConfig, progress func(image.JSONMessage)) error {
	f.calls = append(f.calls, "push "+name+" "+tag)
	return nil
}

func (f *fakeBackend) DistributionInspect(ctx context.Context, name string, auth *image.AuthConfig) (*image.DistributionInspect, error) {
	f.calls = append(f.calls, "distribution "+name)
	return &image.DistributionInspect{Descriptor: image.Descriptor{Digest: "sha256:abc"}, Platforms: []image.Platform{}}, nil
}

func (f *fakeBackend) SearchImages(ctx context.Context, opts image.SearchOptions, auth *image.AuthConfig) ([]image.SearchResult, error) {
	f.calls = append(f.calls, "search "+opts.Term+" "+strconv.Itoa(opts.Limit)+" "+strings.Join(opts.Filters.Get("stars"), ","))
	return []image.SearchResult{}, nil
}

func (f *fakeBackend) AuthenticateToRegistry(ctx context.Context, auth *image.AuthConfig) (*image.AuthResponse, error) {
	return &image.AuthResponse{Status: "Login Succeeded"}, nil
}

func do(t *testing.T, h http.Handler, method, target, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	fb := &fakeBackend{}
	s := server.New(server.Config{ServerVersion: "test"})
	s.InitRouter(NewRouter(fb))

	rec := do(t, s, "GET", "/v1.45/images/localhost:5000/a/b/json", "", nil)
	assert.Equal(t, rec.Code, 200)
	rec = do(t, s, "GET", "/v1.45/images/busybox/history", "", nil)
	assert.Equal(t, rec.Code, 200)
	rec = do(t, s, "POST", "/v1.45/images/localhost:5000/a/tag?repo=x&tag=1", "", nil)
	assert.Equal(t, rec.Code, 201)
	rec = do(t, s, "POST", "/v1.45/images/localhost:5000/a/push?tag=1", "", nil)
	assert.Equal(t, rec.Code, 200)
	rec = do(t, s, "DELETE", "/v1.45/images/localhost:5000/a:1", "", nil)
	assert.Equal(t, rec.Code, 200)
	rec = do(t, s, "GET", "/v1.45/images/busybox/get", "", nil)
	assert.Equal(t, rec.Code, 200)
	assert.Equal(t, rec.Header().Get("Content-Type"), "application/x-tar")
	rec = do(t, s, "GET", "/v1.45/images/get?names=missing", "", nil)
	assert.Equal(t, rec.Code, 404)
	rec = do(t, s, "GET", "/v1.45/images/busybox/bogus", "", nil)
	assert.Equal(t, rec.Code, 404)
	rec = do(t, s, "POST", "/v1.45/images/create?fromSrc=-&repo=r&tag=t&changes=CMD+x", "TARDATA", nil)
	assert.Equal(t, rec.Code, 200)
	assert.Equal(t, rec.Body.String(), "{\"status\":\"sha256:abc\"}\n")
	rec = do(t, s, "GET", "/v1.45/images/json", "", nil)
	assert.Equal(t, rec.Body.String(), "[]\n")
	assert.DeepEqual(t, fb.calls, []string{
		"inspect localhost:5000/a/b", "history busybox", "tag localhost:5000/a x 1", "push localhost:5000/a 1",
		"delete localhost:5000/a:1", "save busybox", "save missing", "import r:t TARDATA CMD x",
	})

	// Errors before any progress keep their status; later ones go into the stream.
	auth := base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p"}`))
	rec = do(t, s, "POST", "/v1.45/images/create?fromImage=x&tag=nope", "", map[string]string{"X-Registry-Auth": auth})
	assert.Equal(t, rec.Code, 404)
	assert.Equal(t, fb.auth.Username, "u")
	rec = do(t, s, "POST", "/v1.45/images/create?fromImage=x&tag=1", "", nil)
	assert.Equal(t, rec.Code, 200)
	assert.Assert(t, strings.Contains(rec.Body.String(), `"errorDetail":{"message":"unexpected EOF"}`), rec.Body.String())
}

func TestRegistryRoutes(t *testing.T) {
	fb := &fakeBackend{}
	s := server.New(server.Config{ServerVersion: "test"})
	s.InitRouter(NewRouter(fb))
	rec := do(t, s, "GET", "/v1.45/distribution/localhost:5000/a/b:1/json", "", nil)
	assert.Equal(t, rec.Code, 200)
	assert.Equal(t, rec.Body.String(), `{"Descriptor":{"mediaType":"","digest":"sha256:abc","size":0},"Platforms":[]}`+"\n")
	rec = do(t, s, "GET", "/v1.45/distribution/busybox/other", "", nil)
	assert.Equal(t, rec.Code, 404)
	rec = do(t, s, "GET", "/v1.45/images/search?term=bb", "", nil)
	assert.Equal(t, rec.Code, 200)
	assert.Equal(t, rec.Body.String(), "[]\n")
	rec = do(t, s, "GET", `/v1.45/images/search?term=bb&limit=7&filters={"stars":{"3":true}}`, "", nil)
	assert.Equal(t, rec.Code, 200)
	rec = do(t, s, "GET", "/v1.45/images/search?term=bb&limit=x", "", nil)
	assert.Equal(t, rec.Code, 400)
	assert.DeepEqual(t, fb.calls, []string{"distribution localhost:5000/a/b:1", "search bb 25 ", "search bb 7 3"})
}
