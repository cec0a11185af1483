package layer

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func readTar(t *testing.T, b []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		assert.NilError(t, err)
		if h.Typeflag == tar.TypeReg {
			body, err := io.ReadAll(tr)
			assert.NilError(t, err)
			h.Linkname = string(body) // the body, for the checks
		}
		out[h.Name] = h
	}
}

func TestWriteDirTar(t *testing.T) {
	top := t.TempDir()
	src := filepath.Join(top, "src")
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "d", "e"), 0o750))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "d", "f"), []byte("data"), 0o640))
	assert.NilError(t, os.Link(filepath.Join(src, "d", "f"), filepath.Join(src, "d", "g")))
	assert.NilError(t, os.Symlink("/etc", filepath.Join(src, "l")))
	assert.NilError(t, syscall.Mkfifo(filepath.Join(src, "p"), 0o600))
	parent := openRoot(t, top)

	var buf bytes.Buffer
	assert.NilError(t, WriteDirTar(&buf, parent, "src", "copy"))
	got := readTar(t, buf.Bytes())
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	assert.Check(t, is.Len(got, 7), "%v", names)
	assert.Check(t, is.Equal(got["copy/"].Typeflag, byte(tar.TypeDir)))
	assert.Check(t, is.Equal(got["copy/d/"].Mode, int64(0o750)))
	assert.Check(t, is.Equal(got["copy/d/e/"].Typeflag, byte(tar.TypeDir)))
	assert.Check(t, is.Equal(got["copy/d/f"].Linkname, "data"))
	assert.Check(t, is.Equal(got["copy/d/f"].Mode, int64(0o640)))
	assert.Check(t, is.Equal(got["copy/d/g"].Typeflag, byte(tar.TypeLink)))
	assert.Check(t, is.Equal(got["copy/d/g"].Linkname, "copy/d/f"))
	assert.Check(t, is.Equal(got["copy/l"].Linkname, "/etc"))
	assert.Check(t, is.Equal(got["copy/p"].Typeflag, byte(tar.TypeFifo)))

	buf.Reset()
	assert.NilError(t, WriteDirTar(&buf, openRoot(t, src), "", "."))
	got = readTar(t, buf.Bytes())
	_, ok := got["d/f"]
	assert.Check(t, ok)
	assert.Check(t, is.Len(got, 6))

	// A symlink where the directory was: nothing written, ELOOP for the caller.
	buf.Reset()
	err := WriteDirTar(&buf, openRoot(t, src), "l", "x")
	assert.Check(t, is.ErrorIs(err, syscall.ENOTDIR))
	assert.Check(t, is.Equal(buf.Len(), 0))
}

// A process swaps a directory inside the copied one for a symlink to a host directory (and back) during
// the walks: the host's canary never shows up in a tar.
func TestWriteDirTarRace(t *testing.T) {
	top := t.TempDir()
	src := filepath.Join(top, "src")
	outside := filepath.Join(top, "outside")
	assert.NilError(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(src, "d", "canary"), []byte("inside"), 0o644))
	assert.NilError(t, os.Mkdir(outside, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(outside, "canary"), []byte("HOST-SECRET"), 0o644))
	parent := openRoot(t, top)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d, x := filepath.Join(src, "d"), filepath.Join(src, "x")
		for !stop.Load() {
			_ = os.Rename(d, x)
			_ = os.Symlink(outside, d)
			_ = os.Remove(d)
			_ = os.Rename(x, d)
		}
	}()
	seen := 0
	for i := 0; i < 2000; i++ {
		var buf bytes.Buffer
		if WriteDirTar(&buf, parent, "src", "src") != nil {
			continue
		}
		for name, h := range readTar(t, buf.Bytes()) {
			assert.Assert(t, !strings.Contains(h.Linkname, "HOST-SECRET"), "host file read as %s", name)
			if strings.HasSuffix(name, "/canary") {
				seen++
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("the container's canary was in %d of 2000 tars", seen)
}
