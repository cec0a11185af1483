package filters

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestFromJSONShapes(t *testing.T) {
	a, err := FromJSON(`{"label":{"a=b":true,"c":true},"dangling":{"true":true}}`)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(a.Get("label"), []string{"a=b", "c"}))
	legacy, err := FromJSON(`{"label":["a=b","c"],"dangling":["true"]}`)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(legacy.Get("label"), []string{"a=b", "c"}))
	empty, err := FromJSON("")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(empty.Len(), 0))
	for _, bad := range []string{"{", `{"a":1}`, `[1]`, `"x"`, `{"a":{"b":"notbool"}}`} {
		_, err := FromJSON(bad)
		assert.Check(t, err != nil, bad)
		var ip interface{ InvalidParameter() }
		assert.Check(t, is.ErrorType(err, &ip), "malformed filters are client errors: %s", bad)
	}
	// Encoding round-trips.
	s, err := ToJSON(a)
	assert.NilError(t, err)
	b, err := FromJSON(s)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(b.Keys(), a.Keys()))
}

func TestPredicates(t *testing.T) {
	a := NewArgs(Arg("name", "^web"), Arg("label", "env=prod"), Arg("label", "team"), Arg("id", "abc"))
	assert.Check(t, a.Match("name", "web-1"))
	assert.Check(t, !a.Match("name", "db-1"))
	assert.Check(t, NewArgs(Arg("name", "[")).Match("name", "["), "an invalid expression still matches exactly")
	assert.Check(t, a.MatchKVList("label", map[string]string{"env": "prod", "team": "x"}))
	assert.Check(t, !a.MatchKVList("label", map[string]string{"env": "dev", "team": "x"}))
	assert.Check(t, !a.MatchKVList("label", map[string]string{"env": "prod"}))
	assert.Check(t, a.FuzzyMatch("id", "abcdef"))
	assert.Check(t, !a.FuzzyMatch("id", "xabc"))
	assert.Check(t, a.ExactMatch("absent", "anything"))

	v, err := NewArgs(Arg("dangling", "1")).GetBoolOrDefault("dangling", false)
	assert.NilError(t, err)
	assert.Check(t, v)
	_, err = NewArgs(Arg("dangling", "maybe")).GetBoolOrDefault("dangling", false)
	assert.ErrorContains(t, err, "invalid filter 'dangling=maybe'")
	_, err = NewArgs(Arg("dangling", "true"), Arg("dangling", "false")).GetBoolOrDefault("dangling", false)
	assert.ErrorContains(t, err, "conflicting")

	assert.ErrorContains(t, a.Validate(map[string]bool{"name": true, "label": true}), "invalid filter 'id'")
	assert.NilError(t, a.Validate(map[string]bool{"name": true, "label": true, "id": true}))
}

func FuzzFromJSON(f *testing.F) {
	for _, s := range []string{"", "{}", `{"a":{"b":true}}`, `{"a":["b"]}`, `{"a":null}`, "[", `{"a":{"b":1}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := FromJSON(s)
		if err != nil {
			return
		}
		// Whatever decodes must be usable and re-encodable.
		for _, k := range a.Keys() {
			a.Get(k)
			a.Match(k, "x")
			a.MatchKVList(k, map[string]string{"x": "y"})
			_, _ = a.GetBoolOrDefault(k, false)
		}
		out, err := ToJSON(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FromJSON(out); err != nil {
			t.Fatalf("re-decoding %q: %v", out, err)
		}
	})
}
