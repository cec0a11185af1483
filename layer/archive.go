package layer

import (
	"archive/tar"
	"context"
	"io"
	"os"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/continuity/fs"
)

// The tar helpers below serve docker cp and export, which work on plain directories rather than on layers:
// they live here so that containerd's archive package stays behind this adapter (hack/validate) and the
// containers service needs no containerd import of its own.

// WriteDirDiff writes the changes of directory upper against lower to w as a tar (with lower empty: a full
// tar of upper), keeping hard links, device nodes and xattrs.
func WriteDirDiff(ctx context.Context, w io.Writer, lower, upper string) error {
	return archive.WriteDiff(ctx, w, lower, upper)
}

// ExtractFiles writes the tar r's entries under dir as plain files: a ".wh." name is an ordinary file, not
// a whiteout, since copying files in is not applying a layer. The tar may be compressed (gzip, bzip2, xz,
// zstd), as dockerd's PUT /containers/{id}/archive accepts: testcontainers-go sends gzip. Tar format errors
// come back as archive/tar's (tar.ErrHeader, io.ErrUnexpectedEOF, ...), for the caller to classify.
func ExtractFiles(ctx context.Context, dir string, r io.Reader) error {
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return err
	}
	defer ds.Close()
	_, err = archive.Apply(ctx, dir, ds, archive.WithConvertWhiteout(func(*tar.Header, string) (bool, error) { return true, nil }))
	return err
}

// TarWriter writes files found under a source directory as tar entries, as containerd's change writer
// does (hard links detected, devices and xattrs kept).
type TarWriter struct{ cw *archive.ChangeWriter }

// NewTarWriter writes to w the entries of files under source.
func NewTarWriter(w io.Writer, source string) *TarWriter {
	return &TarWriter{cw: archive.NewChangeWriter(w, source)}
}

// Add writes the entry for name ("/"-rooted, relative to the source directory) described by fi.
func (t *TarWriter) Add(name string, fi os.FileInfo) error {
	return t.cw.HandleChange(fs.ChangeKindAdd, name, fi, nil)
}

// Close ends the tar stream.
func (t *TarWriter) Close() error { return t.cw.Close() }
