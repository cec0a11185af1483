package builder

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
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
	if hugePagesUsable {
		assert.Check(t, is.Len(s.chunks, 2))
		assert.Check(t, is.Equal(pool.inUse, 2))
	}
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
	if hugePagesUsable {
		assert.Check(t, is.Len(pool.free, 2))
	}

	// A small context needs no file, and reuses a kept chunk.
	s2 := &spoolStore{path: filepath.Join(dir, "spool2"), pool: pool}
	_, err = s2.Write([]byte("small"))
	assert.NilError(t, err)
	r, err = s2.reader()
	assert.NilError(t, err)
	got, err = io.ReadAll(r)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(got), "small"))
	if hugePagesUsable {
		_, err = os.Stat(s2.path)
		assert.Check(t, os.IsNotExist(err))
	}
	if hugePagesUsable {
		assert.Check(t, is.Len(pool.free, 1))
	}
	s2.release()
	assert.Check(t, is.Equal(pool.inUse, 0))
	pool.drop()
	assert.Check(t, is.Len(pool.free, 0))
}
