package image

import (
	"testing"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
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
