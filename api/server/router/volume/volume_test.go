package volume

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/berthd/berthd/api/server"
	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/api/types/volume"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

type fakeBackend struct {
	created     []volume.CreateOptions
	pruneFilter filters.Args
	listFilter  filters.Args
	removed     []string
	force       bool
}

func (b *fakeBackend) List(ctx context.Context, f filters.Args) ([]*volume.Volume, []string, error) {
	b.listFilter = f
	if err := f.Validate(map[string]bool{"name": true, "driver": true, "label": true, "dangling": true}); err != nil {
		return nil, nil, err
	}
	return []*volume.Volume{{Name: "a", Driver: "local", Scope: "local"}}, nil, nil
}

func (b *fakeBackend) Inspect(ctx context.Context, name string) (*volume.Volume, error) {
	if name != "a" && name != "with/slash" {
		return nil, errdefs.ErrNotFound.WithMessage("get " + name + ": no such volume")
	}
	return &volume.Volume{Name: name, Driver: "local", Scope: "local"}, nil
}

func (b *fakeBackend) CreateVolume(ctx context.Context, req volume.CreateOptions) (*volume.Volume, error) {
	b.created = append(b.created, req)
	name := req.Name
	if name == "" {
		name = "anon"
	}
	return &volume.Volume{Name: name, Driver: "local", Scope: "local", Labels: req.Labels, Options: req.DriverOpts}, nil
}

func (b *fakeBackend) RemoveVolume(ctx context.Context, name string, force bool) error {
	b.removed = append(b.removed, name)
	b.force = force
	return nil
}

func (b *fakeBackend) Prune(ctx context.Context, f filters.Args) (*volume.PruneReport, error) {
	b.pruneFilter = f
	return &volume.PruneReport{VolumesDeleted: []string{}}, nil
}

func newServer(b Backend) http.Handler {
	s := server.New(server.Config{ServerVersion: "test"})
	s.InitRouter(NewRouter(b))
	return s
}

func do(h http.Handler, method, path, ctype, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestCreate(t *testing.T) {
	b := &fakeBackend{}
	h := newServer(b)
	w := do(h, "POST", "/v1.45/volumes/create", "application/json", `{"Name":"v1","Driver":"local","Labels":{"a":"b"},"DriverOpts":{"type":"tmpfs"}}`)
	assert.Equal(t, w.Code, http.StatusCreated, w.Body.String())
	var v volume.Volume
	assert.NilError(t, json.Unmarshal(w.Body.Bytes(), &v))
	assert.Equal(t, v.Name, "v1")
	assert.DeepEqual(t, b.created[0].Labels, map[string]string{"a": "b"})

	// Empty body: an anonymous volume.
	w = do(h, "POST", "/v1.45/volumes/create", "", "")
	assert.Equal(t, w.Code, http.StatusCreated)
	assert.DeepEqual(t, b.created[1], volume.CreateOptions{})

	for _, c := range []struct{ ctype, body, msg string }{
		{"text/plain", `{"Name":"x"}`, "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{"application/json", `{"Name":`, "invalid JSON"},
		{"application/json", `{"Name":"x"} {"Name":"y"}`, "unexpected content after JSON"},
		{"application/json", `{"Name":5}`, "invalid JSON"},
		{"application/json", `[]`, "invalid JSON"},
		// curl -d sends a form type: the form parser has read the body by then, which must not make it
		// an empty body (an anonymous volume, 201).
		{"application/x-www-form-urlencoded", `{bad`, "unsupported Content-Type header (application/x-www-form-urlencoded): must be 'application/json'"},
		{"application/x-www-form-urlencoded", `{"Name":"x"}`, "unsupported Content-Type header (application/x-www-form-urlencoded): must be 'application/json'"},
	} {
		n := len(b.created)
		w := do(h, "POST", "/v1.45/volumes/create", c.ctype, c.body)
		assert.Equal(t, len(b.created), n, "nothing created for %q %q", c.ctype, c.body)
		assert.Equal(t, w.Code, http.StatusBadRequest, c.body)
		assert.Assert(t, strings.Contains(w.Body.String(), c.msg), w.Body.String())
		assert.Equal(t, w.Header().Get("Content-Type"), "application/json")
	}
}

func TestListInspectRemove(t *testing.T) {
	b := &fakeBackend{}
	h := newServer(b)
	w := do(h, "GET", "/v1.45/volumes?filters="+`{"name":{"a":true}}`, "", "")
	assert.Equal(t, w.Code, http.StatusOK)
	assert.Equal(t, strings.TrimSpace(w.Body.String()), `{"Volumes":[{"Driver":"local","Labels":null,"Mountpoint":"","Name":"a","Options":null,"Scope":"local"}],"Warnings":null}`)
	assert.DeepEqual(t, b.listFilter.Get("name"), []string{"a"})

	w = do(h, "GET", "/v1.45/volumes?filters="+`{"bogus":{"a":true}}`, "", "")
	assert.Equal(t, w.Code, http.StatusBadRequest)
	w = do(h, "GET", "/v1.45/volumes?filters=notjson", "", "")
	assert.Equal(t, w.Code, http.StatusBadRequest)

	w = do(h, "GET", "/v1.45/volumes/with/slash", "", "")
	assert.Equal(t, w.Code, http.StatusOK)
	w = do(h, "GET", "/v1.45/volumes/nope", "", "")
	assert.Equal(t, w.Code, http.StatusNotFound)
	assert.Equal(t, strings.TrimSpace(w.Body.String()), `{"message":"get nope: no such volume"}`)

	w = do(h, "DELETE", "/v1.45/volumes/a?force=1", "", "")
	assert.Equal(t, w.Code, http.StatusNoContent)
	assert.Assert(t, b.force)
	w = do(h, "DELETE", "/v1.45/volumes/a", "", "")
	assert.Equal(t, w.Code, http.StatusNoContent)
	assert.Assert(t, !b.force)
}

func TestPruneVersionShim(t *testing.T) {
	b := &fakeBackend{}
	h := newServer(b)
	w := do(h, "POST", "/v1.41/volumes/prune", "", "")
	assert.Equal(t, w.Code, http.StatusOK)
	assert.Equal(t, strings.TrimSpace(w.Body.String()), `{"VolumesDeleted":[],"SpaceReclaimed":0}`)
	assert.DeepEqual(t, b.pruneFilter.Get("all"), []string{"true"})

	w = do(h, "POST", "/v1.41/volumes/prune?filters="+`{"all":["false"]}`, "", "")
	assert.Equal(t, w.Code, http.StatusOK)
	assert.DeepEqual(t, b.pruneFilter.Get("all"), []string{"true"})

	w = do(h, "POST", "/v1.42/volumes/prune", "", "")
	assert.Equal(t, w.Code, http.StatusOK)
	assert.Assert(t, !b.pruneFilter.Contains("all"))

	w = do(h, "POST", "/v1.45/volumes/prune?filters="+`{"label":["a=b"]}`, "", "")
	assert.Equal(t, w.Code, http.StatusOK)
	assert.DeepEqual(t, b.pruneFilter.Get("label"), []string{"a=b"})
	assert.Assert(t, !b.pruneFilter.Contains("all"))
}

// FuzzCreateRequest: whatever the body and Content-Type, the create endpoint answers 201 or 400 (the
// backend here accepts everything), never 5xx, never a panic; and 201 only for what dockerd accepts: an
// empty body, or one JSON object declared as JSON (or undeclared), handed to the backend as decoded.
func FuzzCreateRequest(f *testing.F) {
	for _, s := range []string{"", "{}", `{"Name":"v"}`, `{"Name":"v","Driver":"local","DriverOpts":{"o":"size=1m"},"Labels":{"a":""}}`,
		`{"Name":`, `null`, `[]`, `{} {}`, `"x"`, `{"Labels":{"a":1}}`, "\xff", `{"Name":"\u0000"}`} {
		f.Add("application/json", s)
	}
	f.Add("text/plain", `{}`)
	f.Add("application/x-www-form-urlencoded", `{bad`)
	f.Add("", `{bad`)
	f.Add("application/json; charset=utf-8", `{}`)
	f.Fuzz(func(t *testing.T, ctype, body string) {
		b := &fakeBackend{}
		h := newServer(b)
		req := httptest.NewRequest("POST", "/v1.45/volumes/create", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusCreated && w.Code != http.StatusBadRequest {
			t.Fatalf("status %d for %q %q: %s", w.Code, ctype, body, w.Body.String())
		}
		if w.Code != http.StatusCreated {
			if len(b.created) != 0 {
				t.Fatalf("refused %q %q but created a volume", ctype, body)
			}
			return
		}
		if strings.TrimSpace(body) == "" {
			return
		}
		mt, _, err := mime.ParseMediaType(ctype)
		if ctype != "" && (err != nil || mt != "application/json") {
			t.Fatalf("accepted a body declared %q: %q", ctype, body)
		}
		var want volume.CreateOptions
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatalf("accepted a body that does not decode: %q: %v", body, err)
		}
		if len(b.created) != 1 || !reflect.DeepEqual(b.created[0], want) {
			t.Fatalf("backend got %+v, body %q decodes to %+v", b.created, body, want)
		}
	})
}
