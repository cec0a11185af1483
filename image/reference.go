package image

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Every image name a client gives (tag, pull, push, create, commit, import, build -t) goes through this
// file, so the grammar and dockerd's wording are decided in one place. Messages are the reference
// library's own (dockerd passes them through), except for upper case, where dockerd's wording differs
// from the library's current one.

// errUppercase is dockerd's answer to any upper-case letter in a repository path.
const errUppercase = "invalid reference format: repository name must be lowercase"

// ParseNamed normalizes a client's image name as dockerd does ("busybox" -> "docker.io/library/busybox");
// a name that is not a valid reference (upper case, bad characters, a 64-hex-digit name) is an invalid
// argument with dockerd's wording.
func ParseNamed(s string) (reference.Named, error) {
	if hasUppercasePath(s) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(errUppercase)
	}
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return n, nil
}

// hasUppercasePath reports an upper-case letter in the repository path of s. The reference library
// (v0.6) takes an upper-case first component ("UPPER/x") for a registry host; dockerd, and therefore
// berthd, only takes a component for a host when it has a '.' or ':' or is "localhost", so "UPPER/x" is a
// repository named with upper case.
func hasUppercasePath(s string) bool {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if first, rest, ok := strings.Cut(s, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		s = rest
	}
	// What follows the last ':' past the last '/' is a tag, where upper case is allowed.
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		s = s[:i]
	}
	return strings.ToLower(s) != s
}

// ParseTagged is ParseNamed with "latest" added when neither tag nor digest is given.
func ParseTagged(s string) (reference.Named, error) {
	n, err := ParseNamed(s)
	if err != nil {
		return nil, err
	}
	return reference.TagNameOnly(n), nil
}

// WithTag is the reference a new name is given by (tag, import, commit, push): repo, which may carry a
// tag of its own, with tag replacing it when tag is not empty ("latest" when neither is given). tag must
// be a tag: one that looks like a digest is refused ("invalid tag format"), as dockerd does. A digest
// reference is refused ("refusing to create a tag with a digest reference"; callers with other words for
// it check first), and so is a repository named after the digest algorithm ("sha256:<hex>"), as
// ambiguous.
func WithTag(repo, tag string) (reference.Named, error) {
	n, err := ParseNamed(repo)
	if err != nil {
		return nil, err
	}
	if _, ok := n.(reference.Digested); ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("refusing to create a tag with a digest reference")
	}
	if reference.FamiliarName(n) == string(digest.Canonical) {
		return nil, errdefs.ErrInvalidArgument.WithMessage("refusing to create an ambiguous tag using digest algorithm as name")
	}
	if tag == "" {
		return reference.TagNameOnly(n), nil
	}
	t, err := reference.WithTag(reference.TrimNamed(n), tag)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return t, nil
}

// PullReference is the reference a pull asks for: as WithTag, except that the API's tag may be a digest
// (`docker pull x@sha256:...` arrives as fromImage=x&tag=sha256:...) and no name is refused as
// ambiguous (dockerd asks the registry).
func PullReference(repo, tag string) (reference.Named, error) {
	n, err := ParseNamed(repo)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		return reference.TagNameOnly(n), nil
	}
	if _, ok := n.(reference.Digested); ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("cannot combine a digest reference with a tag")
	}
	if d, err := digest.Parse(tag); err == nil {
		r, err := reference.WithDigest(reference.TrimNamed(n), d)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		return r, nil
	}
	t, err := reference.WithTag(reference.TrimNamed(n), tag)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return t, nil
}

// Familiar is the short form the CLI shows ("busybox:latest").
func Familiar(n reference.Named) string { return reference.FamiliarString(n) }

// FamiliarName turns a stored (normalized) name back into its familiar form; names that do not parse are
// returned as they are.
func FamiliarName(s string) string {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	return reference.FamiliarString(n)
}

// MatchReference is the `reference` filter of `docker images`: pattern (path.Match syntax) against the
// familiar form with tag or digest, then against the familiar name alone. A malformed pattern is an
// invalid argument.
func MatchReference(pattern string, n reference.Named) (bool, error) {
	ok, err := reference.FamiliarMatch(pattern, n)
	if err != nil {
		return false, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference filter %q: %v", pattern, err))
	}
	return ok, nil
}
