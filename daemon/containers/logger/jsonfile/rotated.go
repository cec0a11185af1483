package jsonfile

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// gzipFile replaces path with path.gz. The compressed copy is synced before the plain file goes, so a
// crash leaves one of the two complete.
func gzipFile(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(path)
}

// openRotated opens the rotated files of path, oldest first: path.N or path.N.gz for N = 1, 2, … until
// neither exists. The returned func closes them.
func openRotated(path string) ([]io.Reader, func()) {
	var files []*os.File
	var readers []io.Reader
	for i := 1; ; i++ {
		p := fmt.Sprintf("%s.%d", path, i)
		var r io.Reader
		f, err := os.Open(p)
		if err == nil {
			r = f
		} else if f, err = os.Open(p + ".gz"); err == nil {
			zr, zerr := gzip.NewReader(f)
			if zerr != nil {
				f.Close()
				break
			}
			r = zr
		} else {
			break
		}
		files = append(files, f)
		readers = append([]io.Reader{r}, readers...)
	}
	return readers, func() {
		for _, f := range files {
			f.Close()
		}
	}
}
