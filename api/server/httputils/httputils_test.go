package httputils

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthd/berthd/api/server/httpstatus"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

func TestParseForm(t *testing.T) {
	for _, tc := range []struct {
		name, query, ct, body string
		invalid               bool
		form                  map[string]string
	}{
		{name: "query only", query: "a=1", form: map[string]string{"a": "1"}},
		{name: "form body", query: "a=1", ct: "application/x-www-form-urlencoded", body: "b=2", form: map[string]string{"a": "1", "b": "2"}},
		// An unparseable Content-Type is not a form: the body stays for the handler, the query is read.
		{name: "bad content type", query: "a=1", ct: "not a/type;;", body: "b=2", form: map[string]string{"a": "1", "b": ""}},
		{name: "tar body", query: "t=x", ct: "application/x-tar", body: "b=2", form: map[string]string{"t": "x", "b": ""}},
		{name: "bad query", query: "a=%zz", invalid: true},
		{name: "bad query, bad content type", query: "a=%zz", ct: "not a/type;;", invalid: true},
		{name: "bad form body", ct: "application/x-www-form-urlencoded", body: "b=%zz", invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x?"+tc.query, strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			err := ParseForm(r)
			if tc.invalid {
				assert.Assert(t, errdefs.IsInvalidArgument(err), "%v", err)
				return
			}
			assert.NilError(t, err)
			for k, v := range tc.form {
				assert.Equal(t, r.FormValue(k), v, k)
			}
		})
	}
}

func TestRouterErrorClasses(t *testing.T) {
	err := InvalidParameter("invalid limit: x")
	assert.Assert(t, errdefs.IsInvalidArgument(err))
	assert.Equal(t, httpstatus.FromError(err), 400)
	assert.Equal(t, err.Error(), "invalid limit: x")

	err = NotFound("page not found")
	assert.Assert(t, errdefs.IsNotFound(err))
	assert.Equal(t, httpstatus.FromError(err), 404)
	assert.Equal(t, err.Error(), "page not found")

	rec := httptest.NewRecorder()
	WriteError(rec, InvalidParameter("no settings given"))
	assert.Equal(t, rec.Code, 400)
	assert.Equal(t, rec.Body.String(), `{"message":"no settings given"}`+"\n")
}
