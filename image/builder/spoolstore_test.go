package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestSpoolStoreSpillsPastBudget: what the budget cannot hold goes to the file, in order; release gives
// the chunks back (for the next build) and removes the file, once; drop unmaps what is free.
func TestSpoolStoreSpillsPastBudget(t *testing.T) {
	pool := &chunkPool{budget: 2, idle: time.Hour}
	dir := t.TempDir()
	s := &spoolStore{path: filepath.Join(dir, "spool"), pool: pool}
	data := make([]byte, 3*spoolChunk+spoolChunk/2)
	rand.New(rand.NewSource(1)).Read(data)
	// Writes of odd sizes straddle chunk boundaries.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 300_007)
		k, err := s.Write(rest[:n])
		assert.NilError(t, err)
		assert.Equal(t, k, n)
		rest = rest[n:]
	}
	assert.NilError(t, s.finish())
	inMemory := len(s.chunks) * spoolChunk
	assert.Check(t, is.Len(s.chunks, 2))
	assert.Check(t, is.Equal(pool.inUse, 2))
	fi, err := os.Stat(s.path)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(fi.Size(), int64(len(data)-inMemory)))

	r, err := s.reader()
	assert.NilError(t, err)
	got, err := io.ReadAll(r)
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(got, data))

	s.release()
	s.release()
	_, err = os.Stat(s.path)
	assert.Check(t, os.IsNotExist(err))
	assert.Check(t, is.Equal(pool.inUse, 0))
	assert.Check(t, is.Len(pool.free, 2))

	// A small context needs no file, and reuses a kept chunk.
	s2 := &spoolStore{path: filepath.Join(dir, "spool2"), pool: pool}
	_, err = s2.Write([]byte("small"))
	assert.NilError(t, err)
	r, err = s2.reader()
	assert.NilError(t, err)
	got, err = io.ReadAll(r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(got), "small"))
	_, err = os.Stat(s2.path)
	assert.Check(t, os.IsNotExist(err))
	assert.Check(t, is.Len(pool.free, 1))
	s2.release()
	assert.Check(t, is.Equal(pool.inUse, 0))
	pool.drop()
	assert.Check(t, is.Len(pool.free, 0))
}

// TestSpoolHashesMatchContents: every file's sum is the sha256 of its contents, whether hashed inline,
// aside from memory pieces across chunk boundaries, or read back from the file past the budget.
func TestSpoolHashesMatchContents(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	sizes := map[string]int{"a": 100 << 10, "b": 3 << 20, "c": 10, "d/e": 70 << 10, "f": spoolChunk + 5, "Dockerfile": 200 << 10}
	var names []string
	for n := range sizes {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	want := map[string]string{}
	for _, n := range names {
		data := make([]byte, sizes[n])
		r.Read(data)
		sum := sha256.Sum256(data)
		want["/"+n] = hex.EncodeToString(sum[:])
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(data)
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())

	for _, budget := range []int{0, 1, 2} {
		if budget > 0 {
			saved := spoolChunks
			spoolChunks = &chunkPool{budget: budget, idle: time.Hour}
			t.Cleanup(func() { spoolChunks = saved })
		}
		scratch := t.TempDir()
		bc := &buildContext{scratch: scratch, dir: filepath.Join(scratch, "ctx")}
		assert.NilError(t, os.Mkdir(bc.dir, 0o700))
		assert.NilError(t, spoolContext(context.Background(), bc, bytes.NewReader(b.Bytes()), "/Dockerfile"))
		for n, sum := range want {
			assert.Check(t, is.Equal(bc.spool.entries[n].sum, sum), "budget %d: %s", budget, n)
		}
		assert.Check(t, is.Equal(len(bc.spool.kept["/Dockerfile"]), sizes["Dockerfile"]))
		// Extraction still sees the whole archive.
		assert.NilError(t, bc.extracted(context.Background()))
		fi, err := os.Stat(filepath.Join(bc.dir, "b"))
		assert.NilError(t, err)
		assert.Check(t, is.Equal(fi.Size(), int64(sizes["b"])))
		bc.close()
	}
}
