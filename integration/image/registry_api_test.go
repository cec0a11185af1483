package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	regtest "github.com/berthd/berthd/distribution/testutil"
	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func encodeAuth(t *testing.T, user, pass string) string {
	b, err := json.Marshal(registry.AuthConfig{Username: user, Password: pass})
	assert.NilError(t, err)
	return base64.URLEncoding.EncodeToString(b)
}

// TestDistributionInspect: GET /distribution/{name}/json against a local registry that requires
// credentials: the descriptor and platforms of a manifest and of an index, and dockerd's statuses for
// refused credentials (401), a missing tag (404) and a bad name (400).
func TestDistributionInspect(t *testing.T) {
	reg := regtest.StartRegistry(t, "alice", "s3cret")
	d, c := startBusybox(t)
	c.ok("tag", "busybox", reg+"/private:1")
	c.ok("login", "-u", "alice", "-p", "s3cret", reg)
	out := c.ok("push", reg+"/private:1")
	i := strings.Index(out, "digest: ")
	assert.Assert(t, i > 0, out)
	pushed := strings.Fields(out[i+len("digest: "):])[0]

	cl := d.Client(t)
	ctx := context.Background()
	good := encodeAuth(t, "alice", "s3cret")
	di, err := cl.DistributionInspect(ctx, reg+"/private:1", good)
	assert.NilError(t, err)
	assert.Equal(t, di.Descriptor.Digest.String(), pushed)
	assert.Check(t, di.Descriptor.Size > 0)
	assert.Check(t, di.Descriptor.MediaType == "application/vnd.docker.distribution.manifest.v2+json" || di.Descriptor.MediaType == ocispec.MediaTypeImageManifest, di.Descriptor.MediaType)
	arch := c.ok("image", "inspect", "-f", "{{.Architecture}}", "busybox")
	assert.Assert(t, is.Len(di.Platforms, 1))
	assert.Equal(t, di.Platforms[0].Architecture, arch)
	assert.Equal(t, di.Platforms[0].OS, "linux")

	// An index lists its platforms.
	idx := putIndex(t, reg, "alice", "s3cret", "private", pushed, "multi")
	di, err = cl.DistributionInspect(ctx, reg+"/private:multi", good)
	assert.NilError(t, err)
	assert.Equal(t, di.Descriptor.Digest.String(), idx)
	assert.Equal(t, di.Descriptor.MediaType, ocispec.MediaTypeImageIndex)
	assert.Assert(t, is.Len(di.Platforms, 2))
	assert.Equal(t, di.Platforms[0].Architecture+"/"+di.Platforms[1].Architecture+"/"+di.Platforms[1].Variant, "amd64/arm64/v8")

	// Refused credentials are 401 with dockerd's words, with or without credentials.
	for _, auth := range []string{encodeAuth(t, "alice", "wrong"), ""} {
		_, err = cl.DistributionInspect(ctx, reg+"/private:1", auth)
		assert.Check(t, errdefs.IsUnauthorized(err), "%v", err)
		assert.Check(t, is.ErrorContains(err, "unauthorized: authentication required"))
	}
	_, err = cl.DistributionInspect(ctx, reg+"/private:nope", good)
	assert.Check(t, errdefs.IsNotFound(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "manifest unknown: manifest unknown"))
	resp, err := d.HTTPClient().Get("http://d/v1.45/distribution/UPPER/x/json")
	assert.NilError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusBadRequest)
	assert.Check(t, is.Contains(string(b), "invalid reference format: repository name must be lowercase"))

	// An unreachable registry is a clear error.
	_, err = cl.DistributionInspect(ctx, deadAddr(t)+"/x:1", "")
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "connection refused"))
}

// putIndex stores an OCI index at repo:tag listing manifest for linux/amd64 and linux/arm64/v8.
func putIndex(t *testing.T, reg, user, pass, repo, manifest, tag string) string {
	get, _ := http.NewRequest(http.MethodHead, "http://"+reg+"/v2/"+repo+"/manifests/"+manifest, nil)
	get.SetBasicAuth(user, pass)
	get.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, "+ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(get)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	desc := func(p ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: resp.Header.Get("Content-Type"), Digest: digest.Digest(manifest), Size: resp.ContentLength, Platform: &p}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		desc(ocispec.Platform{Architecture: "amd64", OS: "linux"}), desc(ocispec.Platform{Architecture: "arm64", OS: "linux", Variant: "v8"}),
	}}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	assert.NilError(t, err)
	put, _ := http.NewRequest(http.MethodPut, "http://"+reg+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
	put.SetBasicAuth(user, pass)
	put.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	resp, err = http.DefaultClient.Do(put)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusCreated)
	return resp.Header.Get("Docker-Content-Digest")
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestImageSearch: GET /images/search asks the term's registry's v1 search API (here a loopback
// server speaking it) and filters as dockerd; a registry without the API answers dockerd's error, an
// unreachable one a clear error, and bad options are refused before anything is asked.
func TestImageSearch(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" {
			http.NotFound(w, r)
			return
		}
		asked = append(asked, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"num_results":3,"query":"bb","results":[
			{"name":"bb","description":"official","star_count":100,"is_official":true,"is_automated":false},
			{"name":"alice/bb","description":"auto","star_count":5,"is_official":false,"is_automated":true},
			{"name":"bob/bb","description":"plain","star_count":0,"is_official":false,"is_automated":false}]}`))
	}))
	defer srv.Close()
	index := strings.TrimPrefix(srv.URL, "http://")
	reg := regtest.StartRegistry(t, "", "")
	d := daemon.New(t)
	d.Start(t)
	c := cli{t, d}

	names := func(args ...string) []string {
		return lines(c.ok(append([]string{"search", "--format", "{{.Name}}"}, args...)...))
	}
	assert.DeepEqual(t, names(index+"/bb"), []string{"bb", "alice/bb", "bob/bb"})
	assert.DeepEqual(t, names("--filter", "is-official=true", index+"/bb"), []string{"bb"})
	assert.DeepEqual(t, names("--filter", "is-automated=true", index+"/bb"), []string{"alice/bb"})
	assert.DeepEqual(t, names("--filter", "stars=5", index+"/bb"), []string{"bb", "alice/bb"})
	assert.DeepEqual(t, names("--limit", "2", index+"/bb"), []string{"bb", "alice/bb", "bob/bb"})
	assert.DeepEqual(t, asked[len(asked)-1], "n=2&q=bb")
	assert.Check(t, is.Contains(c.ok("search", index+"/bb"), "official"))

	cl := d.Client(t)
	ctx := context.Background()
	for _, tc := range []struct {
		opts registry.SearchOptions
		msg  string
	}{
		{registry.SearchOptions{Limit: 101}, "Limit 101 is outside the range of [1, 100]"},
		{registry.SearchOptions{Filters: filters.NewArgs(filters.Arg("stars", "x"))}, "invalid filter 'stars=x'"},
		{registry.SearchOptions{Filters: filters.NewArgs(filters.Arg("is-official", "x"))}, "invalid filter 'is-official=x'"},
		{registry.SearchOptions{Filters: filters.NewArgs(filters.Arg("nope", "x"))}, "invalid filter 'nope'"},
	} {
		n := len(asked)
		_, err := cl.ImageSearch(ctx, index+"/bb", tc.opts)
		assert.Check(t, errdefs.IsInvalidParameter(err), "%v", err)
		assert.Check(t, is.ErrorContains(err, tc.msg))
		assert.Check(t, is.Len(asked, n), "the registry was asked")
	}

	// docker-registry has no v1 search: dockerd's answer.
	c.fails("Error response from daemon: Unexpected status code 404", "search", reg+"/bb")
	_, err := cl.ImageSearch(ctx, reg+"/bb", registry.SearchOptions{})
	assert.Check(t, errdefs.IsSystem(err) || errdefs.IsUnknown(err), "%v", err)
	// Offline: Unavailable, naming the cause.
	_, err = cl.ImageSearch(ctx, deadAddr(t)+"/bb", registry.SearchOptions{})
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "connection refused"))
}
