package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
)

// A traversal entry is told from a broken archive by its type, not by its message.
func TestTraversalErrorClass(t *testing.T) {
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "a/../../etc/x", Mode: 0o644, Typeflag: tar.TypeReg}))
	assert.NilError(t, tw.Close())
	err := checkTar(bytes.NewReader(evil.Bytes()))
	var te *traversalError
	assert.Assert(t, errors.As(err, &te), "%v", err)
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Equal(t, err.Error(), `invalid tar archive: entry "a/../../etc/x" escapes the root filesystem`)
	assert.Equal(t, pathProblem(bufio.NewReader(bytes.NewReader(evil.Bytes()))), err.Error())

	err = checkTar(bytes.NewReader(bytes.Repeat([]byte("not a tar "), 100)))
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Check(t, !errors.As(err, &te))
	assert.Equal(t, pathProblem(bufio.NewReader(bytes.NewReader(bytes.Repeat([]byte("x"), 1024)))), "")
}
