package store

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/containerd/errdefs"

	"github.com/distribution/reference"
)

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func normalizeRef(s string) (string, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", err
	}
	return reference.TagNameOnly(n).String(), nil
}

func isAlreadyExists(err error) bool { return errdefs.IsAlreadyExists(err) }
