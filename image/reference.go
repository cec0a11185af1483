package image

import (
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// ParseNamed normalizes a client's image name as dockerd does ("busybox" -> "docker.io/library/busybox");
// a name that is not a valid reference (upper case, bad characters) is an invalid argument with dockerd's
// wording.
func ParseNamed(s string) (reference.Named, error) {
	if s == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid reference format: repository name must have at least one component")
	}
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(refErrMessage(s, err))
	}
	return n, nil
}

// ParseTagged is ParseNamed with "latest" added when neither tag nor digest is given.
func ParseTagged(s string) (reference.Named, error) {
	n, err := ParseNamed(s)
	if err != nil {
		return nil, err
	}
	return reference.TagNameOnly(n), nil
}

// WithTag combines a repository and a tag (either may carry the other part, as the API's repo+tag do).
func WithTag(repo, tag string) (reference.Named, error) {
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
	if strings.HasPrefix(tag, "sha256:") {
		d, err := reference.WithDigest(reference.TrimNamed(n), digestOf(tag))
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		return d, nil
	}
	t, err := reference.WithTag(reference.TrimNamed(n), tag)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(refErrMessage(tag, err))
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

func refErrMessage(s string, err error) string {
	msg := err.Error()
	if strings.Contains(msg, "uppercase") || err == reference.ErrNameContainsUppercase {
		return "invalid reference format: repository name (" + s + ") must be lowercase"
	}
	if strings.HasPrefix(msg, "invalid reference format") {
		return msg
	}
	return "invalid reference format: " + msg
}
