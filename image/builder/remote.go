package builder

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
)

var gitURL = regexp.MustCompile(`^(https?://.*\.git(#.*)?|git://.*|git@.*|github\.com/.*)$`)

// fetchRemote fills bc from a remote context: an http(s) URL whose body is a (compressed) tar, or a
// plain-text Dockerfile. Git contexts need a git checkout, which berthd does not do: refused by name.
func (b *Builder) fetchRemote(ctx context.Context, remote string, bc *buildContext) error {
	if gitURL.MatchString(remote) {
		return errdefs.ErrNotImplemented.WithMessage("git build contexts are not supported by berthd's classic builder: " + remote)
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
