package jsonfile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func collect(t *testing.T, path string, opts ReadOptions, f *Follow) []string {
	t.Helper()
	var out []string
	err := Read(context.Background(), path, opts, f, func(m Message) error {
		out = append(out, m.Stream+":"+string(m.Line))
		return nil
	})
	assert.NilError(t, err)
	return out
}

func TestWriteReadTailSince(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(p)
	assert.NilError(t, err)
	base := time.Unix(1700000000, 0)
	for i, l := range []string{"a\n", "b\n", "c"} {
		stream := "stdout"
		if i == 1 {
			stream = "stderr"
		}
		assert.NilError(t, w.Log(stream, []byte(l), base.Add(time.Duration(i)*time.Second)))
	}
	assert.NilError(t, w.Close())
	b, _ := os.ReadFile(p)
	assert.Assert(t, strings.HasPrefix(string(b), `{"log":"a\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}`), string(b))

	assert.DeepEqual(t, collect(t, p, ReadOptions{Tail: -1}, nil), []string{"stdout:a\n", "stderr:b\n", "stdout:c"})
	assert.DeepEqual(t, collect(t, p, ReadOptions{Tail: 2}, nil), []string{"stderr:b\n", "stdout:c"})
	assert.Equal(t, len(collect(t, p, ReadOptions{Tail: 0}, nil)), 0)
	assert.DeepEqual(t, collect(t, p, ReadOptions{Tail: -1, Since: base.Add(time.Second)}, nil), []string{"stderr:b\n", "stdout:c"})
	assert.DeepEqual(t, collect(t, p, ReadOptions{Tail: -1, Until: base}, nil), []string{"stdout:a\n"})
	// A missing file is an empty log.
	assert.Equal(t, len(collect(t, filepath.Join(t.TempDir(), "none"), ReadOptions{Tail: -1}, nil)), 0)
}

func TestFollowEndsWithRun(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(p)
	assert.NilError(t, err)
	assert.NilError(t, w.Log("stdout", []byte("first\n"), time.Now()))
	done := make(chan struct{})
	got := make(chan []string)
	go func() { got <- collect(t, p, ReadOptions{Tail: -1, Follow: true}, &Follow{Writer: w, Done: done}) }()
	time.Sleep(50 * time.Millisecond)
	assert.NilError(t, w.Log("stdout", []byte("second\n"), time.Now()))
	time.Sleep(50 * time.Millisecond)
	close(done)
	select {
	case lines := <-got:
		assert.DeepEqual(t, lines, []string{"stdout:first\n", "stdout:second\n"})
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with the run")
	}
}

func TestRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(p, Options{MaxSize: 200, MaxFiles: 2})
	assert.NilError(t, err)
	for i := 0; i < 20; i++ {
		assert.NilError(t, w.Log("stdout", []byte("line\n"), time.Unix(1700000000, 0)))
	}
	assert.NilError(t, w.Close())
	_, err = os.Stat(p + ".1")
	assert.NilError(t, err)
	_, err = os.Stat(p + ".2")
	assert.Assert(t, os.IsNotExist(err))
	lines := collect(t, p, ReadOptions{Tail: -1}, nil)
	assert.Assert(t, len(lines) > 0 && len(lines) < 20, len(lines))
	for _, l := range lines {
		assert.Equal(t, l, "stdout:line\n")
	}
}
