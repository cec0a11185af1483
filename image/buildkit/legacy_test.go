package buildkit

import (
	"testing"

	buildtypes "github.com/berthd/berthd/api/types/build"
	"github.com/berthd/berthd/api/types/container"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func str(s string) *string { return &s }

func TestSolveRequestAttrs(t *testing.T) {
	req, err := solveRequest(buildtypes.Options{
		Version: "2", SessionID: "s1", Remote: clientSessionRemote, Dockerfile: "build/Dockerfile", Target: "final",
		Platform: "linux/amd64", CacheFrom: []string{"a:1", "b:2"}, NoCache: true, Pull: true, NetworkMode: "host",
		BuildArgs:  map[string]*string{"X": str("1"), "UNSET": nil, "BUILDKIT_INLINE_CACHE": str("1")},
		Labels:     map[string]string{"l": "v"},
		ExtraHosts: []string{"a:10.0.0.1", "b=::1"}, ShmSize: 1 << 20,
		Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
		Tags:    []string{"app", "app:latest", "reg.example/x:2"},
	}, []string{"network.host"}, "")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(req.FrontendAttrs, map[string]string{
		"filename": "build/Dockerfile", "target": "final", "platform": "linux/amd64", "cache-from": "a:1,b:2",
		"build-arg:X": "1", "build-arg:BUILDKIT_INLINE_CACHE": "1", "label:l": "v", "no-cache": "",
		"image-resolve-mode": "pull", "force-network-mode": "host", "add-hosts": "a=10.0.0.1,b=::1",
		"shm-size": "1048576", "ulimit": "nofile=1024:2048",
	}))
	assert.Check(t, is.Equal(req.Frontend, "dockerfile.v0"))
	assert.Check(t, is.Equal(req.Session, "s1"))
	assert.Assert(t, is.Len(req.Exporters, 1))
	assert.Check(t, is.Equal(req.Exporters[0].Type, "moby"))
	assert.Check(t, is.Equal(req.Exporters[0].Attrs["name"], "docker.io/library/app:latest,reg.example/x:2"))
	assert.Check(t, is.DeepEqual(req.Entitlements, []string{"network.host"}))
	assert.Assert(t, is.Len(req.Cache.Exports, 1))
	assert.Check(t, is.Equal(req.Cache.Exports[0].Type, "inline"))

	req, err = solveRequest(buildtypes.Options{Remote: "https://example.invalid/ctx.tar", Outputs: []buildtypes.Output{{Type: "local", Attrs: map[string]string{"dest": "/x"}}}, Tags: []string{"t"}}, nil, "")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(req.FrontendAttrs["context"], "https://example.invalid/ctx.tar"))
	assert.Check(t, is.Equal(req.FrontendAttrs["image-resolve-mode"], "default"))
	assert.Check(t, is.DeepEqual(req.Exporters[0].Attrs, map[string]string{"dest": "/x"}), "tags name only image exports")

	req, err = solveRequest(buildtypes.Options{Outputs: []buildtypes.Output{{Type: "cacheonly"}}}, nil, "")
	assert.NilError(t, err)
	assert.Check(t, is.Len(req.Exporters, 0))

	req, err = solveRequest(buildtypes.Options{ExtraHosts: []string{"gw:host-gateway"}}, nil, "172.17.0.1")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(req.FrontendAttrs["add-hosts"], "gw=172.17.0.1"))
}

func TestSolveRequestRefusals(t *testing.T) {
	for _, tc := range []struct {
		opts  buildtypes.Options
		err   string
		class func(error) bool
	}{
		{buildtypes.Options{NetworkMode: "bridge"}, `network mode "bridge" not supported by buildkit`, errdefs.IsNotImplemented},
		{buildtypes.Options{NetworkMode: "host"}, "network.host is not allowed", errdefs.IsPermissionDenied},
		{buildtypes.Options{Platform: "linux/amd64/v2/x"}, `"linux/amd64/v2/x" is an invalid platform`, errdefs.IsInvalidArgument},
		{buildtypes.Options{Memory: 1}, "memory is not supported by BuildKit builds", errdefs.IsNotImplemented},
		{buildtypes.Options{CgroupParent: "x"}, "cgroupparent is not supported by BuildKit builds", errdefs.IsNotImplemented},
		{buildtypes.Options{ExtraHosts: []string{"h:host-gateway"}}, "unable to derive the IP value for host-gateway", errdefs.IsFailedPrecondition},
		{buildtypes.Options{ExtraHosts: []string{"h:nowhere"}}, `invalid IP address in add-host: "nowhere"`, errdefs.IsInvalidArgument},
		{buildtypes.Options{Tags: []string{"x@sha256:" + "0123456789012345678901234567890123456789012345678901234567890123"}}, "build tag cannot contain a digest", errdefs.IsInvalidArgument},
		{buildtypes.Options{Remote: clientSessionRemote}, "remote=client-session needs a session", errdefs.IsInvalidArgument},
		{buildtypes.Options{Outputs: []buildtypes.Output{{Type: "local"}, {Type: "tar"}}}, "multiple outputs not supported", errdefs.IsInvalidArgument},
	} {
		_, err := solveRequest(tc.opts, []string{}, "")
		assert.Check(t, is.ErrorContains(err, tc.err))
		assert.Check(t, tc.class(err), "%v", err)
	}
}
