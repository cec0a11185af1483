package service

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/berthd/berthd/hack/testenv"

	imagetypes "github.com/berthd/berthd/api/types/image"
	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/berthd/berthd/hack/mkimage"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
)

func loadBusybox(t *testing.T, svc *Service, tag string) {
	img, err := mkimage.BusyboxImage(tag)
	testenv.NoError(t, err, "building the busybox test image")
	var buf bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&buf, []mkimage.Image{img}))
	assert.NilError(t, svc.LoadImage(context.Background(), &buf, true, nil))
}

func collect(msgs *[]imagetypes.JSONMessage) Progress {
	return func(m imagetypes.JSONMessage) { *msgs = append(*msgs, m) }
}

func statuses(msgs []imagetypes.JSONMessage) string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.Status)
	}
	return strings.Join(s, "|")
}

func TestPushPull(t *testing.T) {
	reg := regtest.StartRegistry(t, "", "")
	svc, rec, _ := newService(t)
	ctx := context.Background()
	loadBusybox(t, svc, "busybox:latest")
	ref := reg + "/bb:v1"
	assert.NilError(t, svc.TagImage(ctx, "busybox", reg+"/bb", "v1"))

	var msgs []imagetypes.JSONMessage
	assert.NilError(t, svc.PushImage(ctx, reg+"/bb", "v1", nil, collect(&msgs)))
	st := statuses(msgs)
	assert.Assert(t, strings.HasPrefix(st, "The push refers to repository ["+reg+"/bb]"), st)
	assert.Assert(t, strings.Contains(st, "Pushed"), st)
	assert.Assert(t, msgs[len(msgs)-1].Aux != nil)
	assert.Check(t, rec.has("push "+ref))
	msgs = nil
	assert.NilError(t, svc.PushImage(ctx, reg+"/bb", "v1", nil, collect(&msgs)))
	st = statuses(msgs)
	assert.Assert(t, strings.Contains(st, "Layer already exists") && !strings.Contains(st, "Pushed"), st)

	// Pull into a fresh daemon: progress, digest reference, events.
	svc2, rec2, _ := newService(t)
	msgs = nil
	assert.NilError(t, svc2.PullImage(ctx, reg+"/bb", "v1", "", nil, collect(&msgs)))
	st = statuses(msgs)
	assert.Assert(t, strings.HasPrefix(st, "Pulling from bb|"), st)
	assert.Assert(t, strings.Contains(st, "Pulling fs layer"), st)
	assert.Assert(t, strings.Contains(st, "Download complete"), st)
	assert.Assert(t, strings.Contains(st, "Pull complete"), st)
	assert.Assert(t, strings.HasSuffix(st, "Status: Downloaded newer image for "+ref), st)
	assert.Check(t, rec2.has("pull "+ref))
	insp, err := svc2.ImageInspect(ctx, ref)
	assert.NilError(t, err)
	assert.Check(t, len(insp.RepoDigests) == 1 && strings.HasPrefix(insp.RepoDigests[0], reg+"/bb@sha256:"), "%v", insp.RepoDigests)
	rc, err := svc2.RunConfig(ctx, ref)
	assert.NilError(t, err)
	assert.DeepEqual(t, rc.Cmd, []string{"sh"})
	msgs = nil
	assert.NilError(t, svc2.PullImage(ctx, reg+"/bb:v1", "", "", nil, collect(&msgs)))
	assert.Assert(t, strings.HasSuffix(statuses(msgs), "Status: Image is up to date for "+ref))

	// --all-tags: every tag of the repository.
	assert.NilError(t, svc.TagImage(ctx, "busybox", reg+"/bb", "v2"))
	assert.NilError(t, svc.PushImage(ctx, reg+"/bb", "v2", nil, nil))
	msgs = nil
	assert.NilError(t, svc2.PullImage(ctx, reg+"/bb", "", "", nil, collect(&msgs)))
	_, err = svc2.ImageInspect(ctx, reg+"/bb:v2")
	assert.NilError(t, err)
	assert.Check(t, errdefs.IsNotFound(svc2.PullImage(ctx, reg+"/nothing", "", "", nil, nil)))

	// Missing tag: 404 with dockerd's message, before any progress.
	msgs = nil
	err = svc2.PullImage(ctx, reg+"/bb", "nope", "", nil, collect(&msgs))
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Equal(t, err.Error(), "manifest for "+reg+"/bb:nope not found: manifest unknown: manifest unknown")
	assert.Check(t, len(msgs) == 0)
	// Unreachable registry: a clear error.
	err = svc2.PullImage(ctx, "127.0.0.1:1/bb", "v1", "", nil, nil)
	assert.ErrorContains(t, err, "connection refused")
	// Pushing what does not exist locally.
	err = svc2.PushImage(ctx, reg+"/other", "v1", nil, nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)

	// A multi-arch index resolves to linux/amd64.
	idx := pushIndex(t, reg, "bb", "v1", "multi")
	msgs = nil
	assert.NilError(t, svc2.PullImage(ctx, reg+"/bb", "multi", "", nil, collect(&msgs)))
	insp2, err := svc2.ImageInspect(ctx, reg+"/bb:multi")
	assert.NilError(t, err)
	assert.Equal(t, insp2.ID, insp.ID)
	assert.Equal(t, insp2.Architecture, "amd64")
	assert.Assert(t, strings.Contains(statuses(msgs), "Digest: "+idx.String()))
}

// pushIndex puts an index at repo:tag listing the amd64 manifest of repo:from and an arm64 twin of it
// (same layers, a config saying arm64).
func pushIndex(t *testing.T, reg, repo, from, tag string) digest.Digest {
	base := "http://" + reg + "/v2/" + repo
	req, _ := http.NewRequest("GET", base+"/manifests/"+from, nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest+", application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	mt := resp.Header.Get("Content-Type")
	md := digest.FromBytes(buf.Bytes())

	var m ocispec.Manifest
	assert.NilError(t, json.Unmarshal(buf.Bytes(), &m))
	cresp, err := http.Get(base + "/blobs/" + m.Config.Digest.String())
	assert.NilError(t, err)
	var cfg map[string]any
	assert.NilError(t, json.NewDecoder(cresp.Body).Decode(&cfg))
	cresp.Body.Close()
	cfg["architecture"] = "arm64"
	cb, _ := json.Marshal(cfg)
	cd := digest.FromBytes(cb)
	up, err := http.Post(base+"/blobs/uploads/", "application/octet-stream", nil)
	assert.NilError(t, err)
	up.Body.Close()
	loc := up.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if strings.HasPrefix(loc, "/") {
		loc = "http://" + reg + loc
	}
	put, _ := http.NewRequest("PUT", loc+sep+"digest="+cd.String(), bytes.NewReader(cb))
	r, err := http.DefaultClient.Do(put)
	assert.NilError(t, err)
	r.Body.Close()
	assert.Equal(t, r.StatusCode, http.StatusCreated)
	m.Config.Digest, m.Config.Size = cd, int64(len(cb))
	armb, _ := json.Marshal(m)
	armd := digest.FromBytes(armb)
	put, _ = http.NewRequest("PUT", base+"/manifests/"+armd.String(), bytes.NewReader(armb))
	put.Header.Set("Content-Type", mt)
	r, err = http.DefaultClient.Do(put)
	assert.NilError(t, err)
	r.Body.Close()
	assert.Equal(t, r.StatusCode, http.StatusCreated)

	index := ocispec.Index{
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{
			{MediaType: mt, Digest: armd, Size: int64(len(armb)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}},
			{MediaType: mt, Digest: md, Size: int64(buf.Len()), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		},
	}
	index.SchemaVersion = 2
	b, _ := json.Marshal(index)
	put, _ = http.NewRequest("PUT", base+"/manifests/"+tag, bytes.NewReader(b))
	put.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	r2, err := http.DefaultClient.Do(put)
	assert.NilError(t, err)
	r2.Body.Close()
	assert.Equal(t, r2.StatusCode, http.StatusCreated)
	return digest.FromBytes(b)
}

func TestPushPullAuth(t *testing.T) {
	reg := regtest.StartRegistry(t, "alice", "s3cret")
	svc, _, _ := newService(t)
	ctx := context.Background()
	loadBusybox(t, svc, reg+"/private:1")

	err := svc.PushImage(ctx, reg+"/private", "1", nil, nil)
	assert.ErrorContains(t, err, "authentication required")
	err = svc.PushImage(ctx, reg+"/private", "1", &imagetypes.AuthConfig{Username: "alice", Password: "wrong"}, nil)
	assert.Check(t, err != nil)
	good := &imagetypes.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: reg}
	resp, err := svc.AuthenticateToRegistry(ctx, good)
	assert.NilError(t, err)
	assert.Equal(t, resp.Status, "Login Succeeded")
	_, err = svc.AuthenticateToRegistry(ctx, &imagetypes.AuthConfig{Username: "alice", Password: "wrong", ServerAddress: "http://" + reg + "/v2/"})
	assert.Check(t, errdefs.IsUnauthorized(err), "%v", err)
	_, err = svc.AuthenticateToRegistry(ctx, &imagetypes.AuthConfig{Username: "alice", Password: "x", ServerAddress: "127.0.0.1:1"})
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.NilError(t, svc.PushImage(ctx, reg+"/private", "1", good, nil))

	svc2, _, _ := newService(t)
	err = svc2.PullImage(ctx, reg+"/private", "1", "", nil, nil)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.ErrorContains(t, err, "pull access denied for "+reg+"/private")
	assert.NilError(t, svc2.PullImage(ctx, reg+"/private", "1", "", good, nil))
}

// TestPushPullLoopbackTLS: a loopback registry serving HTTPS with a certificate nobody trusts is used
// like dockerd uses insecure registries (TLS without verification), as plain HTTP ones are.
func TestPushPullLoopbackTLS(t *testing.T) {
	reg := regtest.StartRegistryWith(t, regtest.Options{TLS: true})
	svc, _, _ := newService(t)
	ctx := context.Background()
	loadBusybox(t, svc, reg+"/tls:1")
	assert.NilError(t, svc.PushImage(ctx, reg+"/tls", "1", nil, nil))
	svc2, _, _ := newService(t)
	assert.NilError(t, svc2.PullImage(ctx, reg+"/tls", "1", "", nil, nil))
}

// TestConcurrentLoadsAndPulls: the same image loaded and pulled by several clients at once ends as one
// image, and every call succeeds.
func TestConcurrentLoadsAndPulls(t *testing.T) {
	reg := regtest.StartRegistry(t, "", "")
	svc, _, _ := newService(t)
	ctx := context.Background()
	img, err := mkimage.BusyboxImage(reg + "/c:1")
	testenv.NoError(t, err, "building the busybox test image")
	var buf bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&buf, []mkimage.Image{img}))
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		go func() { errs <- svc.LoadImage(ctx, bytes.NewReader(buf.Bytes()), true, nil) }()
	}
	for i := 0; i < 4; i++ {
		assert.NilError(t, <-errs)
	}
	assert.Equal(t, svc.CountImages(ctx), 1)
	assert.NilError(t, svc.PushImage(ctx, reg+"/c", "1", nil, nil))

	svc2, _, _ := newService(t)
	for i := 0; i < 4; i++ {
		go func() { errs <- svc2.PullImage(ctx, reg+"/c", "1", "", nil, nil) }()
	}
	for i := 0; i < 4; i++ {
		assert.NilError(t, <-errs)
	}
	assert.Equal(t, svc2.CountImages(ctx), 1)
	_, err = svc2.RunConfig(ctx, reg+"/c:1")
	assert.NilError(t, err)
}
