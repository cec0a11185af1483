package volume

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/berthd/berthd/api/types/volume"
)

// A listing of thousands of volumes is most of GET /volumes' cost when encoded by reflection; appendList
// writes exactly what encoding/json would (same field order, sorted map keys, same escaping, trailing
// newline) by appending to a pooled buffer, and falls back to encoding/json for what it does not handle
// itself (a string needing escapes, a volume with Status or UsageData).

var listBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuf keeps one huge listing from pinning its buffer forever.
const maxPooledBuf = 8 << 20

// writeList answers 200 with resp, with a Content-Length (no chunking).
func writeList(w http.ResponseWriter, resp *volume.ListResponse) error {
	bp := listBufs.Get().(*[]byte)
	b, err := appendList((*bp)[:0], resp)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	if cap(b) <= maxPooledBuf {
		*bp = b
		listBufs.Put(bp)
	}
	return err
}

func appendList(b []byte, resp *volume.ListResponse) ([]byte, error) {
	b = append(b, `{"Volumes":`...)
	if resp.Volumes == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, v := range resp.Volumes {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendVolume(b, v); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"Warnings":`...)
	if resp.Warnings == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, w := range resp.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, w)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...), nil
}

func appendVolume(b []byte, v *volume.Volume) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	if v.Status != nil || v.UsageData != nil {
		return appendReflect(b, v)
	}
	b = append(b, '{')
	if v.CreatedAt != "" {
		b = append(b, `"CreatedAt":`...)
		b = appendString(b, v.CreatedAt)
		b = append(b, ',')
	}
	b = append(b, `"Driver":`...)
	b = appendString(b, v.Driver)
	b = append(b, `,"Labels":`...)
	b = appendMap(b, v.Labels)
	b = append(b, `,"Mountpoint":`...)
	b = appendString(b, v.Mountpoint)
	b = append(b, `,"Name":`...)
	b = appendString(b, v.Name)
	b = append(b, `,"Options":`...)
	b = appendMap(b, v.Options)
	b = append(b, `,"Scope":`...)
	b = appendString(b, v.Scope)
	return append(b, '}'), nil
}

func appendMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendString quotes s itself when it is printable ASCII without '"' or '\\' (names, paths, labels in
// practice); anything else goes through encoding/json, for its exact escaping.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			out, _ := appendReflect(b, s) // a string always encodes
			return out
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendReflect appends v as encoding/json does with HTML escaping off (WriteJSON's settings), without
// the trailing newline.
func appendReflect(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}
