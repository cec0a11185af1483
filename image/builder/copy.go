package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/pkg/errors"
)

type copyRequest struct {
	add                      bool
	src                      []string
	dest, from, chown, chmod string
}

// source is one resolved COPY/ADD source: a path under root (the context, or a copy of another stage's
// files), or a downloaded file.
type source struct {
	root, rel string
	fi        os.FileInfo
	hash      string
	// archive is set for an ADD of a local tar: its entries are extracted, not the file copied.
	archive bool
	// preserve keeps the files' owners (COPY --from without --chown).
	preserve bool
}

func (r *run) copyCmd(ctx context.Context, s *stage, req copyRequest) error {
	if req.chmod != "" {
		return errBuildKitFlag("chmod")
	}
	root := r.bc.dir
	preserve := false
	if req.from != "" {
		dir, cleanup, err := r.fromSource(ctx, req.from, req.src)
		if err != nil {
			return err
		}
		defer cleanup()
		root, preserve = dir, req.chown == ""
	}
	var srcs []source
	for _, p := range req.src {
		if req.add && (strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")) {
			src, cleanup, err := r.download(ctx, p)
			if err != nil {
				return err
			}
			defer cleanup()
			srcs = append(srcs, src)
			continue
		}
		if req.from == "" && !req.add && r.bc.spool != nil {
			found, err := r.bc.spool.resolveIndex(root, p)
			if err == nil {
				srcs = append(srcs, found...)
				continue
			}
			if err != errUseDisk {
				return err
			}
		}
		if req.from == "" {
			if err := r.bc.extracted(ctx); err != nil {
				return err
			}
		}
		found, err := resolveSources(root, p)
		if err != nil {
			return err
		}
		for _, f := range found {
			f.preserve = preserve
			if req.add && f.fi.Mode().IsRegular() && isArchive(filepath.Join(f.root, f.rel)) {
				f.archive = true
			}
			if err := f.computeHash(); err != nil {
				return err
			}
			srcs = append(srcs, f)
		}
	}
	dest := req.dest
	if !path.IsAbs(dest) {
		base := s.cfg.WorkingDir
		if base == "" {
			base = "/"
		}
		dest = path.Join(base, dest) + map[bool]string{true: "/"}[strings.HasSuffix(req.dest, "/")]
	}
	if len(srcs) > 1 && !strings.HasSuffix(dest, "/") {
		name := "COPY"
		if req.add {
			name = "ADD"
		}
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("When using %s with more than one source file, the destination must be a directory and end with a /", name))
	}
	name := "COPY"
	if req.add {
		name = "ADD"
	}
	desc := describe(srcs)
	comment := name + " "
	if req.chown != "" {
		comment += "--chown=" + req.chown + " "
	}
	comment += desc + " in " + req.dest + " "
	probe := nopConfig(s, comment, false)
	return r.commitStep(ctx, s, probe, false, func(ctx context.Context, id string) error {
		if req.from == "" {
			if err := r.bc.extracted(ctx); err != nil {
				return err
			}
		}
		for _, src := range srcs {
			if err := r.copyOne(ctx, id, src, dest, req.chown); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r *run) copyOne(ctx context.Context, id string, src source, dest, chown string) error {
	full := filepath.Join(src.root, src.rel)
	switch {
	case src.archive:
		f, err := os.Open(full)
		if err != nil {
			return err
		}
		defer f.Close()
		ds, err := compression.DecompressStream(f)
		if err != nil {
			return err
		}
		defer ds.Close()
		return r.b.containers.CopyIn(ctx, id, dest, chown, ds)
	case src.fi.IsDir():
		return r.b.containers.CopyIn(ctx, id, dest, chown, tarStream(full, "", src.preserve))
	}
	dir, name := dest, path.Base(src.rel)
	if !strings.HasSuffix(dest, "/") {
		isDir, err := r.b.containers.IsDir(ctx, id, dest)
		if err != nil {
			return err
		}
		if !isDir {
			dir, name = path.Dir(dest), path.Base(dest)
		}
	}
	return r.b.containers.CopyIn(ctx, id, dir, chown, tarStream(full, name, src.preserve))
}

// resolveSources expands p (wildcards as filepath.Match) under root; nothing resolves outside root.
func resolveSources(root, p string) ([]source, error) {
	clean := path.Clean("/" + filepath.ToSlash(p))
	notFound := errNotFound(p)
	if !strings.ContainsAny(clean, "*?[") {
		full, err := securejoin.SecureJoin(root, clean)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(full)
		if err != nil {
			return nil, notFound
		}
		rel, _ := filepath.Rel(root, full)
		if fi.Mode()&os.ModeSymlink != 0 {
			// A source that is a link is copied as what it points to, inside the root.
			if fi, err = os.Stat(full); err != nil {
				return nil, notFound
			}
		}
		return []source{{root: root, rel: rel, fi: fi}}, nil
	}
	var out []source
	err := filepath.WalkDir(root, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, fp)
		if rel == "." {
			return nil
		}
		if ok, _ := path.Match(strings.TrimPrefix(clean, "/"), filepath.ToSlash(rel)); ok {
			fi, err := os.Lstat(fp)
			if err == nil {
				out = append(out, source{root: root, rel: rel, fi: fi})
			}
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, notFound
	}
	return out, nil
}

// computeHash is the source's cache identity: names, modes, owners, link targets and contents of all it
// holds; never times. A file is "file:<sha256>", a directory "dir:<sha256>".
func (s *source) computeHash() error {
	full := filepath.Join(s.root, s.rel)
	if !s.fi.IsDir() {
		h, err := fileHash(full, s.fi, ".")
		if err != nil {
			return err
		}
		s.hash = "file:" + h
		return nil
	}
	var lines []string
	err := filepath.Walk(full, func(fp string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(full, fp)
		h, err := fileHash(fp, fi, rel)
		if err != nil {
			return err
		}
		lines = append(lines, h)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	s.hash = "dir:" + hex.EncodeToString(sum[:])
	return nil
}

func fileHash(fp string, fi os.FileInfo, name string) (string, error) {
	h := sha256.New()
	uid, gid := owner(fi)
	link := ""
	if fi.Mode()&os.ModeSymlink != 0 {
		link, _ = os.Readlink(fp)
	}
	size := int64(0)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	fmt.Fprintf(h, "name=%s\x00mode=%o\x00uid=%d\x00gid=%d\x00size=%d\x00link=%s\x00", name, fi.Mode(), uid, gid, size, link)
	if fi.Mode().IsRegular() {
		f, err := os.Open(fp)
		if err != nil {
			return "", err
		}
		d := sha256.New()
		_, err = io.Copy(d, f)
		f.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "content=%s", hex.EncodeToString(d.Sum(nil)))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func owner(fi os.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

func describe(srcs []source) string {
	if len(srcs) == 1 {
		return srcs[0].hash
	}
	var hs []string
	for _, s := range srcs {
		hs = append(hs, s.hash)
	}
	sum := sha256.Sum256([]byte(strings.Join(hs, ",")))
	return "multi:" + hex.EncodeToString(sum[:])
}

// tarStream writes src as a tar: a file under name, or a directory's contents. Owners become root
// unless preserve is set.
func tarStream(src, name string, preserve bool) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.Walk(src, func(fp string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, fp)
			if fi.IsDir() && rel == "." {
				return nil
			}
			if rel == "." {
				rel = name
			}
			link := ""
			if fi.Mode()&os.ModeSymlink != 0 {
				link, _ = os.Readlink(fp)
			}
			hdr, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(rel)
			if fi.IsDir() {
				hdr.Name += "/"
			}
			hdr.Uname, hdr.Gname = "", ""
			if preserve {
				hdr.Uid, hdr.Gid = owner(fi)
			} else {
				hdr.Uid, hdr.Gid = 0, 0
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				f, err := os.Open(fp)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, f)
				f.Close()
				return err
			}
			return nil
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	ds, err := compression.DecompressStream(f)
	if err != nil {
		return false
	}
	defer ds.Close()
	_, err = tar.NewReader(ds).Next()
	return err == nil
}

// fromSource copies the sources of COPY --from out of a stage's (or an image's) filesystem into a
// scratch directory, through a container created from it.
func (r *run) fromSource(ctx context.Context, from string, srcs []string) (string, func(), error) {
	ref := from
	if id, ok := r.stageImages[strings.ToLower(from)]; ok {
		ref = id
	} else if _, err := r.baseImage(ctx, from); err != nil {
		return "", nil, err
	}
	img, err := r.b.images.Get(ctx, ref)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(r.b.cfg.TmpRoot, "from-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	cc := toContainerConfig(copyConfig(nil))
	cc.Image, cc.Cmd, cc.Entrypoint = img.ID, []string{"/bin/sh"}, []string{}
	id, _, err := r.b.containers.Create(ctx, cc, r.hc)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	defer r.b.containers.Remove(context.WithoutCancel(ctx), id)
	for _, p := range srcs {
		p = path.Clean("/" + p)
		if strings.ContainsAny(p, "*?[") {
			p = path.Dir(p)
		}
		into := filepath.Join(dir, filepath.FromSlash(path.Dir(p)))
		if err := os.MkdirAll(into, 0o755); err != nil {
			cleanup()
			return "", nil, err
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(r.b.containers.Archive(ctx, id, p, pw)) }()
		err := extractContext(ctx, into, pr)
		pr.Close()
		if err != nil && !errdefs.IsNotFound(err) {
			if errdefs.IsInvalidArgument(err) {
				continue // the path is absent: resolveSources reports it by name
			}
			cleanup()
			return "", nil, err
		}
	}
	return dir, cleanup, nil
}

// download fetches an ADD URL into a scratch file (mode 0600, not extracted), named after the URL's
// last path element.
func (r *run) download(ctx context.Context, raw string) (source, func(), error) {
	u, err := url.Parse(raw)
	if err != nil {
		return source{}, nil, errdefs.ErrInvalidArgument.WithMessage("invalid URL " + raw)
	}
	r.out.emit(jsonStatus(raw, "Downloading"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return source{}, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return source{}, nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("failed to GET %s: %v", raw, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return source{}, nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("failed to GET %s with status %s", raw, resp.Status))
	}
	dir, err := os.MkdirTemp(r.b.cfg.TmpRoot, "add-")
	if err != nil {
		return source{}, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		cleanup()
		return source{}, nil, errdefs.ErrInvalidArgument.WithMessage("cannot determine filename from url: " + raw)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		cleanup()
		return source{}, nil, err
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		cleanup()
		return source{}, nil, errors.Wrapf(err, "download %s", raw)
	}
	fi, err := os.Lstat(filepath.Join(dir, name))
	if err != nil {
		cleanup()
		return source{}, nil, err
	}
	src := source{root: dir, rel: name, fi: fi}
	if err := src.computeHash(); err != nil {
		cleanup()
		return source{}, nil, err
	}
	return src, cleanup, nil
}

func errNotFound(p string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", strings.TrimPrefix(p, "/")))
}
