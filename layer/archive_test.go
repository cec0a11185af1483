package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func tarNames(t *testing.T, b []byte) []string {
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		names = append(names, h.Name)
	}
	sort.Strings(names)
	return names
}

// docker cp copies files: a ".wh." name lands as a file of that name, never as a deletion.
func TestExtractFilesKeepsWhiteoutNames(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "x"), []byte("keep"), 0o644))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{".wh.x", "a"} {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte("1"))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	assert.NilError(t, ExtractFiles(context.Background(), dir, &buf))
	for _, name := range []string{"x", ".wh.x", "a"} {
		_, err := os.Stat(filepath.Join(dir, name))
		assert.Check(t, err, name)
	}
}

// dockerd's PUT /containers/{id}/archive takes compressed tars; testcontainers-go's CopyToContainer sends gzip.
func TestExtractFilesGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "sub/f", Mode: 0o640, Size: 4, Typeflag: tar.TypeReg}))
	_, err := tw.Write([]byte("data"))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	assert.NilError(t, zw.Close())
	dir := t.TempDir()
	assert.NilError(t, ExtractFiles(context.Background(), dir, &buf))
	b, err := os.ReadFile(filepath.Join(dir, "sub", "f"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "data"))
}

func TestExtractFilesBrokenTar(t *testing.T) {
	err := ExtractFiles(context.Background(), t.TempDir(), bytes.NewReader(bytes.Repeat([]byte("x"), 1024)))
	assert.Assert(t, err != nil)
}

func TestTarWriterAndWriteDirDiff(t *testing.T) {
	src := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "d", "f"), []byte("data"), 0o644))
	assert.NilError(t, os.Link(filepath.Join(src, "d", "f"), filepath.Join(src, "d", "g")))

	var buf bytes.Buffer
	w := NewTarWriter(&buf, src)
	for _, p := range []string{"/d", "/d/f", "/d/g"} {
		fi, err := os.Lstat(filepath.Join(src, p))
		assert.NilError(t, err)
		assert.NilError(t, w.Add(p, fi))
	}
	assert.NilError(t, w.Close())
	assert.Check(t, is.DeepEqual(tarNames(t, buf.Bytes()), []string{"d/", "d/f", "d/g"}))
	// The second name of a hard-linked file is a link to the first, not a second copy.
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		if h.Name == "d/g" {
			assert.Check(t, is.Equal(h.Typeflag, byte(tar.TypeLink)))
			assert.Check(t, is.Equal(h.Linkname, "d/f"))
		}
	}

	buf.Reset()
	assert.NilError(t, WriteDirDiff(context.Background(), &buf, t.TempDir(), src))
	assert.Check(t, is.DeepEqual(tarNames(t, buf.Bytes()), []string{"d/", "d/f", "d/g"}))
}
