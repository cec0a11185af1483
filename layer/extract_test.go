package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

type tarEntry struct {
	h    tar.Header
	body string
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		assert.NilError(t, tw.WriteHeader(&h))
		_, err := tw.Write([]byte(e.body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

func openRoot(t testing.TB, dir string) *os.File {
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	assert.NilError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// extractWith runs the extractor with or without openat2, so both resolution paths are tested here.
func extractWith(root *os.File, openat2 bool, r io.Reader) error {
	if openat2 {
		return ExtractInRoot(context.Background(), root, r)
	}
	return extractor{root: root}.run(context.Background(), r)
}

func forBoth(t *testing.T, fn func(t *testing.T, openat2 bool)) {
	t.Run("openat2", func(t *testing.T) {
		if !hasOpenat2() {
			t.Fatal("this kernel has no openat2")
		}
		fn(t, true)
	})
	t.Run("securejoin", func(t *testing.T) { fn(t, false) })
}

func TestExtractInRootEntryKinds(t *testing.T) {
	forBoth(t, func(t *testing.T, openat2 bool) {
		dir := t.TempDir()
		mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		b := makeTar(t,
			tarEntry{h: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, ModTime: mtime, Uid: 1000, Gid: 1001}},
			tarEntry{h: tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o4755, ModTime: mtime, Uid: 7, Gid: 8,
				PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}, body: "data"},
			tarEntry{h: tar.Header{Name: "d/hl", Typeflag: tar.TypeLink, Linkname: "d/f"}},
			tarEntry{h: tar.Header{Name: "d/abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", ModTime: mtime}},
			tarEntry{h: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o640}},
			tarEntry{h: tar.Header{Name: "deep/er/f", Typeflag: tar.TypeReg}, body: "no parent entry"},
			tarEntry{h: tar.Header{Name: ".wh.x", Typeflag: tar.TypeReg}, body: "a file"},
		)
		assert.NilError(t, extractWith(openRoot(t, dir), openat2, bytes.NewReader(b)))

		fi, err := os.Lstat(filepath.Join(dir, "d"))
		assert.NilError(t, err)
		assert.Check(t, fi.IsDir())
		assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o750)))
		assert.Check(t, fi.ModTime().Equal(mtime), "dir mtime %v", fi.ModTime())
		st := fi.Sys().(*syscall.Stat_t)
		assert.Check(t, is.Equal(st.Uid, uint32(1000)))
		assert.Check(t, is.Equal(st.Gid, uint32(1001)))

		fi, err = os.Lstat(filepath.Join(dir, "d", "f"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(fi.Mode()&(os.ModePerm|os.ModeSetuid), os.FileMode(0o755)|os.ModeSetuid))
		assert.Check(t, fi.ModTime().Equal(mtime))
		assert.Check(t, is.Equal(fi.Sys().(*syscall.Stat_t).Uid, uint32(7)))
		assert.Check(t, is.Equal(fi.Sys().(*syscall.Stat_t).Nlink, uint64(2)), "hard link")
		buf := make([]byte, 8)
		if n, err := unix.Lgetxattr(filepath.Join(dir, "d", "f"), "user.k", buf); err == nil {
			assert.Check(t, is.Equal(string(buf[:n]), "v"))
		}

		link, err := os.Readlink(filepath.Join(dir, "d", "abs"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(link, "/etc/passwd"), "symlink target stored verbatim")
		fi, err = os.Lstat(filepath.Join(dir, "fifo"))
		assert.NilError(t, err)
		assert.Check(t, fi.Mode()&os.ModeNamedPipe != 0)
		assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o640)))
		for _, p := range []string{"deep/er/f", ".wh.x"} {
			_, err := os.Stat(filepath.Join(dir, p))
			assert.Check(t, err)
		}
	})
}

// "..", absolute names, a symlink of the tar's own to / or .., and a hard link to a host file all stay
// under the root.
func TestExtractInRootStaysInside(t *testing.T) {
	forBoth(t, func(t *testing.T, openat2 bool) {
		top := t.TempDir()
		dir := filepath.Join(top, "root")
		assert.NilError(t, os.Mkdir(dir, 0o755))
		canary := filepath.Join(top, "canary")
		assert.NilError(t, os.WriteFile(canary, []byte("HOST"), 0o600))
		b := makeTar(t,
			tarEntry{h: tar.Header{Name: "../escape1", Typeflag: tar.TypeReg}, body: "x"},
			tarEntry{h: tar.Header{Name: "/../../escape2", Typeflag: tar.TypeReg}, body: "x"},
			tarEntry{h: tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: ".."}},
			tarEntry{h: tar.Header{Name: "up/escape3", Typeflag: tar.TypeReg}, body: "x"},
			tarEntry{h: tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "../canary"}},
		)
		err := extractWith(openRoot(t, dir), openat2, bytes.NewReader(b))
		// The hard link to "../canary" is "/canary" under the root, which does not exist.
		assert.Check(t, is.ErrorContains(err, "extract hl"))
		// A parent that is a dangling symlink is refused rather than created through the link.
		b = makeTar(t,
			tarEntry{h: tar.Header{Name: "slash", Typeflag: tar.TypeSymlink, Linkname: top}},
			tarEntry{h: tar.Header{Name: "slash/canary", Typeflag: tar.TypeReg}, body: "overwritten"},
		)
		err = extractWith(openRoot(t, dir), openat2, bytes.NewReader(b))
		assert.Check(t, is.ErrorContains(err, "extract slash/canary"))
		ents, err := os.ReadDir(top)
		assert.NilError(t, err)
		assert.Check(t, is.Len(ents, 2), "something was written beside the root")
		got, err := os.ReadFile(canary)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(got), "HOST"))
		for _, p := range []string{"escape1", "escape2", "escape3"} {
			_, err := os.Lstat(filepath.Join(dir, p))
			assert.Check(t, err, p)
		}
	})
}

// A non-directory is replaced, a directory kept for a directory entry and replaced (with its content) by
// anything else; a symlink standing where a file goes is replaced, never followed.
func TestExtractInRootReplaces(t *testing.T) {
	forBoth(t, func(t *testing.T, openat2 bool) {
		top := t.TempDir()
		dir := filepath.Join(top, "root")
		assert.NilError(t, os.MkdirAll(filepath.Join(dir, "keep", "sub"), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "keep", "old"), nil, 0o644))
		assert.NilError(t, os.MkdirAll(filepath.Join(dir, "gone", "sub"), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(top, "canary"), []byte("HOST"), 0o600))
		assert.NilError(t, os.Symlink(filepath.Join(top, "canary"), filepath.Join(dir, "f")))
		b := makeTar(t,
			tarEntry{h: tar.Header{Name: "keep", Typeflag: tar.TypeDir, Mode: 0o755}},
			tarEntry{h: tar.Header{Name: "gone", Typeflag: tar.TypeReg}, body: "file now"},
			tarEntry{h: tar.Header{Name: "f", Typeflag: tar.TypeReg}, body: "new"},
		)
		assert.NilError(t, extractWith(openRoot(t, dir), openat2, bytes.NewReader(b)))
		_, err := os.Stat(filepath.Join(dir, "keep", "old"))
		assert.Check(t, err)
		got, err := os.ReadFile(filepath.Join(dir, "gone"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(got), "file now"))
		fi, err := os.Lstat(filepath.Join(dir, "f"))
		assert.NilError(t, err)
		assert.Check(t, fi.Mode().IsRegular())
		got, err = os.ReadFile(filepath.Join(top, "canary"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(got), "HOST"))
	})
}

func TestExtractInRootBrokenTar(t *testing.T) {
	b := makeTar(t, tarEntry{h: tar.Header{Name: "f", Typeflag: tar.TypeReg}, body: "0123456789"})
	err := ExtractInRoot(context.Background(), openRoot(t, t.TempDir()), bytes.NewReader(b[:520]))
	assert.Check(t, is.ErrorIs(err, io.ErrUnexpectedEOF))
	err = ExtractInRoot(context.Background(), openRoot(t, t.TempDir()), bytes.NewReader(bytes.Repeat([]byte("x"), 1024)))
	assert.Check(t, is.ErrorIs(err, tar.ErrHeader))
}

// A process swaps a directory of the destination for a symlink to the host's directory (and back) while
// tars are extracted into it: the host's canary directory is never written.
func TestExtractInRootRace(t *testing.T) {
	forBoth(t, func(t *testing.T, openat2 bool) {
		top := t.TempDir()
		dir := filepath.Join(top, "root")
		outside := filepath.Join(top, "outside")
		assert.NilError(t, os.MkdirAll(filepath.Join(dir, "d", "sub"), 0o755))
		assert.NilError(t, os.Mkdir(outside, 0o755))
		assert.NilError(t, os.Mkdir(filepath.Join(outside, "sub"), 0o755))
		root := openRoot(t, dir)

		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, x := filepath.Join(dir, "d"), filepath.Join(dir, "x")
			for !stop.Load() {
				_ = os.Rename(d, x)
				_ = os.Symlink(outside, d)
				_ = os.Remove(d)
				_ = os.Rename(x, d)
			}
		}()
		b := makeTar(t,
			tarEntry{h: tar.Header{Name: "d/sub/f", Typeflag: tar.TypeReg}, body: "x"},
			tarEntry{h: tar.Header{Name: "d/g", Typeflag: tar.TypeReg}, body: "x"},
			tarEntry{h: tar.Header{Name: "d/sub/dd", Typeflag: tar.TypeDir, Mode: 0o777}},
			tarEntry{h: tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "/"}},
			tarEntry{h: tar.Header{Name: "d/sub/hl", Typeflag: tar.TypeLink, Linkname: "d/g"}},
		)
		ok := 0
		for i := 0; i < 2000; i++ {
			if extractWith(root, openat2, bytes.NewReader(b)) == nil {
				ok++
			}
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("%d of 2000 extractions succeeded", ok)
		ents, err := os.ReadDir(outside)
		assert.NilError(t, err)
		assert.Check(t, is.Len(ents, 1), "an extraction wrote outside the root")
		ents, err = os.ReadDir(filepath.Join(outside, "sub"))
		assert.NilError(t, err)
		assert.Check(t, is.Len(ents, 0), "an extraction wrote outside the root")
		fi, err := os.Stat(filepath.Join(outside, "sub"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o755)))
	})
}

// Whatever the tar, nothing is created or changed outside the root.
func FuzzExtractInRoot(f *testing.F) {
	f.Add(makeTar(f, tarEntry{h: tar.Header{Name: "a/b", Typeflag: tar.TypeReg}, body: "x"}))
	f.Add(makeTar(f,
		tarEntry{h: tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../.."}},
		tarEntry{h: tar.Header{Name: "l/x", Typeflag: tar.TypeReg}, body: "x"},
		tarEntry{h: tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../outside/keep"}},
	))
	f.Fuzz(func(t *testing.T, b []byte) {
		top := t.TempDir()
		dir := filepath.Join(top, "root")
		outside := filepath.Join(top, "outside")
		assert.NilError(t, os.Mkdir(dir, 0o755))
		assert.NilError(t, os.Mkdir(outside, 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(outside, "keep"), []byte("HOST"), 0o644))
		root := openRoot(t, dir)
		_ = ExtractInRoot(context.Background(), root, bytes.NewReader(b))
		ents, err := os.ReadDir(top)
		assert.NilError(t, err)
		assert.Check(t, is.Len(ents, 2))
		ents, err = os.ReadDir(outside)
		assert.NilError(t, err)
		assert.Check(t, is.Len(ents, 1))
		got, err := os.ReadFile(filepath.Join(outside, "keep"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(string(got), "HOST"))
		fi, err := os.Lstat(filepath.Join(outside, "keep"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(fi.Sys().(*syscall.Stat_t).Nlink, uint64(1)), "hard-linked from inside")
		assert.Check(t, is.Equal(fi.Mode().Perm(), os.FileMode(0o644)))
	})
}

// PUT /containers/{id}/archive takes compressed tars as dockerd does (testcontainers-go sends gzip).
func TestExtractInRootGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "sub/f", Mode: 0o640, Size: 4, Typeflag: tar.TypeReg}))
	_, err := tw.Write([]byte("data"))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	assert.NilError(t, zw.Close())
	dir := t.TempDir()
	assert.NilError(t, ExtractInRoot(context.Background(), openRoot(t, dir), &buf))
	b, err := os.ReadFile(filepath.Join(dir, "sub", "f"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(b), "data"))
}
