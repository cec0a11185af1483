package builder

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
)

var gitURL = regexp.MustCompile(`^(https?://.*\.git(#.*)?|git://.*|git@.*|github\.com/.*)$`)

// fetchRemote fills bc from a remote context: a git repository (see fetchGit), or an http(s) URL whose
// body is a (compressed) tar or a plain-text Dockerfile.
func (b *Builder) fetchRemote(ctx context.Context, remote string, bc *buildContext) error {
	if gitURL.MatchString(remote) {
		return b.fetchGit(ctx, remote, bc)
	}
	if !strings.HasPrefix(remote, "http://") && !strings.HasPrefix(remote, "https://") {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("remoteURL (%s) could not be recognized as URL", remote))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, remote, nil)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("remoteURL (%s) could not be recognized as URL", remote))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("error downloading remote context %s: %v", remote, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("error downloading remote context %s: %s", remote, resp.Status))
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/plain" {
		f, err := os.Create(filepath.Join(bc.dir, "Dockerfile"))
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.ReadFrom(resp.Body); err != nil {
			return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("error downloading remote context %s: %v", remote, err))
		}
		return nil
	}
	return extractContext(ctx, bc.dir, resp.Body)
}

// fetchGit checks out a git context as dockerd does: a shallow fetch of URL#ref:subdir (default branch
// when no ref), submodules included, with the git binary; the context is subdir of the checkout.
func (b *Builder) fetchGit(ctx context.Context, remote string, bc *buildContext) error {
	u, fragment, _ := strings.Cut(remote, "#")
	ref, subdir, _ := strings.Cut(fragment, ":")
	if strings.HasPrefix(u, "github.com/") {
		u = "https://" + u
	}
	if _, err := exec.LookPath("git"); err != nil {
		return errdefs.ErrNotImplemented.WithMessage("git build contexts need the git binary, which is not installed")
	}
	fail := func(out []byte, err error) error {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("error downloading remote context %s: %v: %s", remote, err, strings.TrimSpace(string(out))))
	}
	checkout := filepath.Join(bc.scratch, "git")
	steps := [][]string{{"init", "-q", checkout}, {"-C", checkout, "remote", "add", "origin", u}}
	if ref == "" {
		steps = append(steps, []string{"-C", checkout, "fetch", "-q", "--depth", "1", "origin", "HEAD"})
	} else {
		steps = append(steps, []string{"-C", checkout, "fetch", "-q", "--depth", "1", "origin", ref})
	}
	steps = append(steps, []string{"-C", checkout, "checkout", "-q", "FETCH_HEAD"},
		[]string{"-C", checkout, "submodule", "update", "-q", "--init", "--recursive", "--depth", "1"})
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_PROTOCOL_FROM_USER=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fail(out, err)
		}
	}
	dir, err := securejoin.SecureJoin(checkout, subdir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("subdirectory %q of %s is not a directory", subdir, remote))
	}
	bc.dir = dir
	return nil
}
