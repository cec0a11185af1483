package store

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/containerd/errdefs"
)

func FuzzCheckTar(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a/b", Size: 1, Mode: 0o644, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.WriteHeader(&tar.Header{Name: "l", Linkname: "a/b", Typeflag: tar.TypeLink})
	tw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("garbage"))
	f.Add(buf.Bytes()[:700])
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := CheckTar(bytes.NewReader(b)); err != nil && !errdefs.IsInvalidArgument(err) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

func TestCheckEntryPath(t *testing.T) {
	for _, bad := range []string{"../x", "a/../../x", "/../x", `..\x`} {
		if err := checkEntryPath(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"a", "./a", "a/..b", "/abs/ok", "..."} {
		if err := checkEntryPath(good); err != nil {
			t.Errorf("%q refused: %v", good, err)
		}
	}
}
