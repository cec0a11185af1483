package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func fuzzSeed(entries ...tar.Header) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		h.Mode = 0o644
		_ = tw.WriteHeader(&h)
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write([]byte("x"))
		}
	}
	_ = tw.Close()
	return b.Bytes()
}

// FuzzExtractContext: whatever the context archive holds, extraction writes nothing beside the scratch
// directory (the directory next to it stays empty).
func FuzzExtractContext(f *testing.F) {
	f.Add(fuzzSeed(tar.Header{Name: "Dockerfile"}, tar.Header{Name: "a/b"}))
	f.Add(fuzzSeed(tar.Header{Name: "../escaped"}, tar.Header{Name: "/abs/escaped"}))
	f.Add(fuzzSeed(tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: ".."}, tar.Header{Name: "l/escaped"}))
	f.Add(fuzzSeed(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../outside"}))
	f.Add([]byte("not a tar at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "ctx")
		if err := os.MkdirAll(filepath.Join(dir, "ctx"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(parent, "outside"), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		// The build's path: spooled, then extracted on demand; and the direct extraction of remote
		// contexts and COPY --from.
		bc := &buildContext{scratch: dir, dir: filepath.Join(dir, "ctx")}
		defer bc.close()
		if spoolContext(context.Background(), bc, bytes.NewReader(data), "/Dockerfile") == nil {
			_ = bc.extracted(context.Background())
		}
		_ = extractContext(context.Background(), filepath.Join(dir, "ctx"), bytes.NewReader(data))
		ents, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "ctx" && e.Name() != "outside" {
				t.Fatalf("extraction wrote %s outside the context directory", e.Name())
			}
		}
		if b, err := os.ReadFile(filepath.Join(parent, "outside")); err != nil || string(b) != "keep" {
			t.Fatalf("a file outside the context directory was changed: %q %v", b, err)
		}
	})
}
