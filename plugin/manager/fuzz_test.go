package manager

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExtract feeds arbitrary tarballs to the create extractor: it may fail, but never panic or write
// outside the staging directory.
func FuzzExtract(f *testing.F) {
	seed := func(entries ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			if h.Typeflag == tar.TypeReg {
				h.Size = 1
			}
			_ = tw.WriteHeader(h)
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write([]byte("x"))
			}
		}
		_ = tw.Close()
		return buf.Bytes()
	}
	f.Add(seed(&tar.Header{Name: "config.json", Typeflag: tar.TypeReg}, &tar.Header{Name: "rootfs/a/b", Typeflag: tar.TypeReg, Mode: 0o644}))
	f.Add(seed(&tar.Header{Name: "rootfs/l", Typeflag: tar.TypeSymlink, Linkname: "/"}, &tar.Header{Name: "rootfs/l/x", Typeflag: tar.TypeReg}))
	f.Add(seed(&tar.Header{Name: "rootfs/../../x", Typeflag: tar.TypeReg}))
	f.Add(seed(&tar.Header{Name: "rootfs/h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}))
	f.Add(seed(&tar.Header{Name: "rootfs/d", Typeflag: tar.TypeDir, Mode: 0o7777}, &tar.Header{Name: "rootfs/d/../../../y", Typeflag: tar.TypeReg}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		stage := filepath.Join(base, "stage")
		if err := os.Mkdir(stage, 0o700); err != nil {
			t.Fatal(err)
		}
		_, _ = extract(bytes.NewReader(data), stage)
		ents, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 || ents[0].Name() != "stage" {
			t.Fatalf("extract wrote outside its directory: %v", ents)
		}
		sub, _ := os.ReadDir(stage)
		for _, e := range sub {
			if e.Name() != "rootfs" {
				t.Fatalf("extract wrote %s beside rootfs", e.Name())
			}
		}
	})
}
