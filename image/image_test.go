package image

import (
	"strings"
	"testing"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestApplyChanges(t *testing.T) {
	var c imagetypes.ContainerConfig
	err := ApplyChanges(&c, []string{
		`CMD ["/bin/sh","-c","echo hi"]`, `ENTRYPOINT /bin/ls -l`, `ENV A=1 B="two words"`, `ENV C three words`,
		`LABEL a=b "c d"=e`, `EXPOSE 80 53/udp`, `VOLUME ["/data"]`, `USER nobody`, `WORKDIR /w`, `STOPSIGNAL SIGINT`,
	})
	assert.NilError(t, err)
	assert.DeepEqual(t, c.Cmd, []string{"/bin/sh", "-c", "echo hi"})
	assert.DeepEqual(t, c.Entrypoint, []string{"/bin/sh", "-c", "/bin/ls -l"})
	assert.DeepEqual(t, c.Env, []string{"A=1", "B=two words", "C=three words"})
	assert.DeepEqual(t, c.Labels, map[string]string{"a": "b", "c d": "e"})
	assert.Check(t, is.Len(c.ExposedPorts, 2))
	_, ok := c.ExposedPorts["80/tcp"]
	assert.Check(t, ok)
	_, ok = c.Volumes["/data"]
	assert.Check(t, ok)
	assert.Equal(t, c.User, "nobody")
	assert.Equal(t, c.WorkingDir, "/w")
	assert.Equal(t, c.StopSignal, "SIGINT")

	for _, bad := range []string{"RUN echo", "FROM x", `LABEL "unterminated`, "ENV"} {
		err := ApplyChanges(&c, []string{bad})
		assert.Check(t, errdefs.IsInvalidArgument(err), bad)
	}
}

func TestReferences(t *testing.T) {
	n, err := ParseTagged("busybox")
	assert.NilError(t, err)
	assert.Equal(t, n.String(), "docker.io/library/busybox:latest")
	assert.Equal(t, Familiar(n), "busybox:latest")
	_, err = ParseNamed("UPPER")
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.ErrorContains(t, err, "must be lowercase")
	n, err = WithTag("localhost:5000/x", "v1")
	assert.NilError(t, err)
	assert.Equal(t, n.String(), "localhost:5000/x:v1")
	_, err = WithTag("x", "bad tag")
	assert.Check(t, errdefs.IsInvalidArgument(err))
	assert.Equal(t, FamiliarName("docker.io/library/busybox:latest"), "busybox:latest")
	assert.Check(t, IsHexPrefix("sha256:abc"))
	assert.Check(t, !IsHexPrefix("busybox"))
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}}`))
	assert.NilError(t, err)
	assert.Equal(t, string(c.ChainID()), "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
	rc := RunConfigOf("sha256:x", c, "overlayfs")
	assert.DeepEqual(t, rc.Cmd, []string{"sh"})
	_, err = ParseConfig([]byte(`{`))
	assert.Check(t, errdefs.IsInvalidArgument(err))
	_, err = ParseConfig([]byte(`{"rootfs":{"type":"layers","diff_ids":["nope"]}}`))
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{`CMD ["a"]`, `ENV a="b c"`, `LABEL x=\"y`, `EXPOSE 80`, `VOLUME [""]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c imagetypes.ContainerConfig
		_ = ApplyChanges(&c, []string{s})
	})
}

// The wording of each refusal is dockerd's (checked against dockerd 20.10 through the API).
func TestReferenceGrammar(t *testing.T) {
	const hex = "0123456789012345678901234567890123456789012345678901234567890123"
	for _, tc := range []struct{ repo, tag, want, err string }{
		{repo: "busybox", want: "docker.io/library/busybox:latest"},
		{repo: "x:y", tag: "z", want: "docker.io/library/x:z"},
		{repo: "x", tag: "Upper", want: "docker.io/library/x:Upper"},
		{repo: "x", tag: hex, want: "docker.io/library/x:" + hex},
		{repo: "Example.com/x", tag: "1", want: "Example.com/x:1"},
		{repo: "localhost/x", want: "localhost/x:latest"},
		{repo: "UPPER/x", err: "invalid reference format: repository name must be lowercase"},
		{repo: "Up", err: "invalid reference format: repository name must be lowercase"},
		{repo: "Busybox:x", err: "invalid reference format: repository name must be lowercase"},
		{repo: "localhost:5000/A/b", err: "invalid reference format: repository name must be lowercase"},
		{repo: "x", tag: "sha256:" + hex, err: "invalid tag format"},
		{repo: "x", tag: "-bad", err: "invalid tag format"},
		{repo: "x", tag: "A@b", err: "invalid tag format"},
		{repo: "x:-bad", err: "invalid reference format"},
		{repo: "", err: "invalid reference format"},
		{repo: "a//b", err: "invalid reference format"},
		{repo: "sha256:" + hex, err: "refusing to create an ambiguous tag using digest algorithm as name"},
		{repo: hex, err: "invalid repository name (" + hex + "), cannot specify 64-byte hexadecimal strings"},
		{repo: "x@sha256:" + hex, tag: "t", err: "refusing to create a tag with a digest reference"},
		{repo: "x@sha256:" + hex, err: "refusing to create a tag with a digest reference"},
	} {
		n, err := WithTag(tc.repo, tc.tag)
		if tc.err != "" {
			assert.Check(t, errdefs.IsInvalidArgument(err), "%q %q: %v", tc.repo, tc.tag, err)
			if err != nil {
				assert.Check(t, is.Equal(err.Error(), tc.err), "%q %q", tc.repo, tc.tag)
			}
			continue
		}
		if assert.Check(t, err, "%q %q", tc.repo, tc.tag) {
			assert.Check(t, is.Equal(n.String(), tc.want))
		}
	}
	// A pull's tag may be a digest; a name like "sha256" is the registry's business.
	n, err := PullReference("x", "sha256:"+hex)
	assert.NilError(t, err)
	assert.Equal(t, n.String(), "docker.io/library/x@sha256:"+hex)
	_, err = PullReference("x", "sha256:abc")
	assert.Error(t, err, "invalid tag format")
	_, err = PullReference("sha256", hex)
	assert.NilError(t, err)
	_, err = PullReference("UPPER/x", "latest")
	assert.Error(t, err, "invalid reference format: repository name must be lowercase")
}

func TestMatchReference(t *testing.T) {
	n, err := ParseNamed("localhost:5000/team/app:v1")
	assert.NilError(t, err)
	for p, want := range map[string]bool{
		"localhost:5000/team/app": true, "localhost:5000/team/app:v1": true, "localhost:5000/*/app": true,
		"localhost:5000/team/*": true, "*": false, "app": false, "localhost:5000/team/app:v2": false,
	} {
		ok, err := MatchReference(p, n)
		assert.NilError(t, err)
		assert.Check(t, ok == want, p)
	}
	bb, _ := ParseNamed("busybox:latest")
	for p, want := range map[string]bool{"busybox": true, "bu*": true, "busybox:latest": true, "busybox:l*": true, "b": false} {
		ok, _ := MatchReference(p, bb)
		assert.Check(t, ok == want, p)
	}
	_, err = MatchReference("[", bb)
	assert.Check(t, errdefs.IsInvalidArgument(err))
}

// FuzzWithTag: any repo and tag either give a valid reference that parses back to itself, or an
// InvalidArgument; never a panic, never a name with an upper-case repository path.
func FuzzWithTag(f *testing.F) {
	for _, s := range [][2]string{{"busybox", ""}, {"UPPER/x", "1"}, {"localhost:5000/a/b", "v1"}, {"x@sha256:" + strings.Repeat("0", 64), ""}, {"sha256:abc", ""}, {"Example.com/x", "T"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, repo, tag string) {
		for _, parse := range []func(string, string) (reference.Named, error){WithTag, PullReference} {
			n, err := parse(repo, tag)
			if err != nil {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("%q %q: %v is not InvalidArgument", repo, tag, err)
				}
				continue
			}
			back, err := ParseNamed(n.String())
			if err != nil || back.String() != n.String() {
				t.Fatalf("%q %q -> %q does not parse back: %v", repo, tag, n.String(), err)
			}
		}
	})
}
