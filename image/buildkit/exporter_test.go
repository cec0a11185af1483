package buildkit

import (
	"context"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/cache"
	"github.com/moby/buildkit/exporter"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestSanitizeNames(t *testing.T) {
	got, err := sanitizeNames("x,docker.io/library/x:latest,,reg:5000/a/b:v1,x")
	assert.NilError(t, err)
	assert.DeepEqual(t, got, []string{"docker.io/library/x:latest", "reg:5000/a/b:v1"})

	got, err = sanitizeNames("")
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 0))

	_, err = sanitizeNames("x@sha256:" + "0123456789012345678901234567890123456789012345678901234567890123")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "build tag cannot contain a digest"))
	_, err = sanitizeNames("UPPER")
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "invalid reference format"))
}

func TestSingleImage(t *testing.T) {
	// Plain results pass unchanged.
	plain := &exporter.Source{Metadata: map[string][]byte{"k": []byte("v")}}
	got, err := singleImage(plain)
	assert.NilError(t, err)
	assert.Check(t, got == plain)

	// One platform keyed by its ID, with a provenance attestation: a plain ref, no attestations, the
	// caller's source untouched.
	src := &exporter.Source{
		Refs:         map[string]cache.ImmutableRef{"linux/amd64": nil},
		Attestations: map[string][]exporter.Attestation{"linux/amd64": {{Kind: 0, Path: "provenance.json"}}},
		Metadata:     map[string][]byte{"k": []byte("v")},
	}
	got, err = singleImage(src)
	assert.NilError(t, err)
	assert.Check(t, is.Len(got.Refs, 0))
	assert.Check(t, is.Len(got.Attestations, 0))
	assert.Check(t, is.Equal(string(got.Metadata["k"]), "v"))
	assert.Check(t, is.Len(src.Refs, 1))
	assert.Check(t, is.Len(src.Attestations, 1))

	// Several platforms are refused, naming the way out.
	multi := &exporter.Source{Refs: map[string]cache.ImmutableRef{"linux/amd64": nil, "linux/arm64": nil}}
	_, err = singleImage(multi)
	assert.Check(t, errdefs.IsInvalidArgument(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "--output type=oci"))
}

func TestUniquePlatforms(t *testing.T) {
	got := uniquePlatforms([]ocispec.Platform{
		{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "x86_64"},
		{OS: "linux", Architecture: "amd64", Variant: "v2"}, {OS: "linux", Architecture: "amd64"},
	})
	assert.DeepEqual(t, got, []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "amd64", Variant: "v2"}})
}

func TestImageExporterRefusesWhatItCannotHonour(t *testing.T) {
	e := &imageExporter{}
	for _, tc := range []struct {
		attrs map[string]string
		class func(error) bool
		msg   string
	}{
		{map[string]string{"store": "false"}, errdefs.IsNotImplemented, "store=false is not supported"},
		{map[string]string{"unpack": "false"}, errdefs.IsNotImplemented, "unpack=false is not supported"},
		{map[string]string{"push": "true"}, errdefs.IsInvalidArgument, "tag is needed when pushing to registry"},
		{map[string]string{"name": "x", "push": "maybe"}, errdefs.IsInvalidArgument, `non-bool value "maybe" for exporter option push`},
		{map[string]string{"name": "x", "push": "true", "push-by-digest": "true"}, errdefs.IsNotImplemented, "push-by-digest is not supported"},
	} {
		_, err := e.Resolve(context.Background(), 0, tc.attrs)
		assert.Check(t, tc.class(err), "%v: %v", tc.attrs, err)
		assert.Check(t, is.ErrorContains(err, tc.msg), "%v", tc.attrs)
	}
}
