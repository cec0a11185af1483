package distribution

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
)

func TestVerifiedReader(t *testing.T) {
	body := "layer content"
	desc := ocispec.Descriptor{Digest: digest.FromString(body), Size: int64(len(body))}
	read := func(content string, d ocispec.Descriptor) error {
		r := &verifiedReader{rc: io.NopCloser(nil), r: io.LimitReader(strings.NewReader(content), d.Size+1), v: d.Digest.Verifier(), desc: d}
		_, err := io.Copy(io.Discard, r)
		return err
	}
	assert.NilError(t, read(body, desc))
	err := read("layer c0ntent", desc)
	assert.Check(t, errdefs.IsDataLoss(err), err)
	err = read(body+"!", desc)
	assert.Check(t, errdefs.IsDataLoss(err), err)
	err = read(body[:4], desc)
	assert.Check(t, errdefs.IsDataLoss(err), err)
}

func TestFileProvider(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	assert.NilError(t, os.WriteFile(path, []byte("hello"), 0o600))
	d := digest.FromString("hello")
	p := FileProvider{d: path}
	ra, err := p.ReaderAt(context.Background(), ocispec.Descriptor{Digest: d, Size: 5})
	assert.NilError(t, err)
	defer ra.Close()
	assert.Equal(t, ra.Size(), int64(5))
	buf := make([]byte, 3)
	n, err := ra.ReadAt(buf, 2)
	assert.NilError(t, err)
	assert.Equal(t, string(buf[:n]), "llo")
	_, err = p.ReaderAt(context.Background(), ocispec.Descriptor{Digest: digest.FromString("other")})
	assert.Check(t, errdefs.IsNotFound(err))
}
