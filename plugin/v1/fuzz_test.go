package v1

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
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

// FuzzParseSpec feeds arbitrary .spec contents and .json specs to the parsers: no panic, and an accepted
// address always names a network, an address to dial and a URL for a method.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"unix:///run/p.sock", "tcp://127.0.0.1:1", "http://h/prefix", "https://h:1", "/x", "unix://", "tcp://", ":", "\x00", `{"Addr":"tcp://h:1","TLSConfig":{}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := parseURL(s); err == nil {
			if a.network == "" || a.dialAddr == "" || !strings.HasSuffix(a.url("M"), "/M") {
				t.Fatalf("bad address from %q: %+v", s, a)
			}
		}
		dir := t.TempDir()
		p := dir + "/x.json"
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if a, err := readJSONSpec(p); err == nil && a.dialAddr == "" {
			t.Fatalf("json spec %q accepted without an address", s)
		}
	})
}
