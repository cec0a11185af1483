package volume

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/berthd/berthd/api/types/volume"
	"gotest.tools/v3/assert"
)

func reflectList(t testing.TB, resp *volume.ListResponse) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	assert.NilError(t, enc.Encode(resp))
	return buf.Bytes()
}

// appendList writes byte for byte what WriteJSON (encoding/json, HTML escaping off) writes.
func TestAppendListMatchesEncodingJSON(t *testing.T) {
	for _, resp := range []*volume.ListResponse{
		{},
		{Volumes: []*volume.Volume{}, Warnings: []string{}},
		{Volumes: []*volume.Volume{
			{Name: "a", Driver: "local", Mountpoint: "/var/lib/berthd/volumes/a/_data", Scope: "local", CreatedAt: "2026-11-22T14:00:00Z",
				Labels: map[string]string{"z": "1", "a": "", "m": "x y"}, Options: map[string]string{"type": "tmpfs", "o": "size=1m"}},
			{Name: "b", Driver: "vp", Labels: map[string]string{}, Options: nil},
			nil,
			{Name: "quo\"te\\s\n<&>\u2028é\xff", Driver: "d\t", Labels: map[string]string{"k\x01": "v\u2029"}},
			{Name: "st", Driver: "vp", Status: map[string]any{"x": 1, "y": []any{"a"}}},
			{Name: "use", Driver: "local", UsageData: &volume.UsageData{RefCount: -1, Size: -1}},
		}, Warnings: []string{"list vp: plugin \"vp\" is unavailable", "w2"}},
	} {
		got, err := appendList(nil, resp)
		assert.NilError(t, err)
		assert.Equal(t, string(got), string(reflectList(t, resp)))
	}
}

func FuzzAppendList(f *testing.F) {
	f.Add("name", "local", "/p", "k", "v", "warn")
	f.Add("\"\\\x00é\xff\u2028<>&", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, name, driver, mp, k, v, w string) {
		resp := &volume.ListResponse{
			Volumes:  []*volume.Volume{{Name: name, Driver: driver, Mountpoint: mp, Labels: map[string]string{k: v, "x": k}, Options: map[string]string{v: k}}},
			Warnings: []string{w},
		}
		got, err := appendList(nil, resp)
		assert.NilError(t, err)
		assert.Equal(t, string(got), string(reflectList(t, resp)))
	})
}

func BenchmarkAppendList5000(b *testing.B) {
	resp := &volume.ListResponse{}
	for i := 0; i < 5000; i++ {
		n := "bench" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		resp.Volumes = append(resp.Volumes, &volume.Volume{Name: n, Driver: "local", Mountpoint: "/var/lib/berthd/volumes/" + n + "/_data",
			Labels: map[string]string{"bench": "1"}, Scope: "local", CreatedAt: "2026-11-22T14:00:00Z"})
	}
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf, _ = appendList(buf[:0], resp)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			reflectList(b, resp)
		}
	})
}
