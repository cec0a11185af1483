package store

import (
	"bytes"
	"io"
	"math/rand"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
)

type countingReaderAt struct {
	*bytes.Reader
	calls atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls.Add(1)
	return c.Reader.ReadAt(p, off)
}
func (c *countingReaderAt) Close() error { return nil }

func TestReadAhead(t *testing.T) {
	data := make([]byte, 5*readAheadSize+12345)
	rand.New(rand.NewSource(1)).Read(data)
	src := &countingReaderAt{Reader: bytes.NewReader(data)}
	r := &readAhead{ra: src}

	// Sequential 32 KiB reads, as an archive writer does: the data, in few calls.
	got, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(got, data))
	assert.Check(t, src.calls.Load() <= 7, "%d calls", src.calls.Load())

	// Reads anywhere, backwards too.
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		off := rng.Int63n(int64(len(data)))
		p := make([]byte, rng.Intn(3*readAheadSize))
		n, err := r.ReadAt(p, off)
		want := data[off:min(off+int64(len(p)), int64(len(data)))]
		assert.Equal(t, n, len(want))
		if n < len(p) {
			assert.Equal(t, err, io.EOF)
		}
		assert.Check(t, bytes.Equal(p[:n], want), "read at %d", off)
	}
	assert.NilError(t, r.Close())
}
