package v1

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzDecodeReply feeds arbitrary plugin replies to the decoder the client uses, as 200 bodies and as
// error bodies: it must never panic, never accept more than the cap, and accept only single JSON values.
func FuzzDecodeReply(f *testing.F) {
	for _, s := range []string{"", "null", "{}", `{"Err":"x"}`, `{"Volumes":[{"Name":"a","Mountpoint":"/m"}]}`, "{} {}", `{"Err":`, "\x00", strings.Repeat("[", 5000)} {
		f.Add([]byte(s))
	}
	const limit = 4096
	f.Fuzz(func(t *testing.T, b []byte) {
		var ret struct {
			Err     string
			Volumes []struct{ Name, Mountpoint string }
		}
		err := DecodeReply(b, limit, &ret)
		if len(b) > limit && err == nil {
			t.Fatalf("accepted a %d-byte reply over the %d cap", len(b), limit)
		}
		if err == nil {
			var v any
			if json.Unmarshal(b, &v) != nil {
				t.Fatalf("accepted invalid JSON %q", b)
			}
		}
		if err := DecodeReply(b, limit, nil); err == nil && len(bytes.TrimSpace(b)) == 0 {
			t.Fatal("accepted an empty reply")
		}
		resp := &http.Response{StatusCode: 500, Body: io.NopCloser(bytes.NewReader(b))}
		if err := readReply("M", resp, &ret, limit); err == nil {
			t.Fatal("a non-200 reply must fail")
		} else if len(err.Error()) > maxErrorBody+64 && !strings.HasPrefix(err.Error(), "M: ") {
			t.Fatalf("bad error text %q", err)
		}
	})
}
