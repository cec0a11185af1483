package distribution

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/remotes/docker"

	"github.com/containerd/containerd/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
)

// tracker is a fetch handler that records the layers it was given and the most it had running at once.
type tracker struct {
	mu            sync.Mutex
	started       []digest.Digest
	running, peak int
}

func (tr *tracker) handler() images.HandlerFunc {
	return func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		tr.mu.Lock()
		tr.started = append(tr.started, d.Digest)
		tr.running++
		tr.peak = max(tr.peak, tr.running)
		tr.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		tr.mu.Lock()
		tr.running--
		tr.mu.Unlock()
		return nil, nil
	}
}

func TestFetchInOrder(t *testing.T) {
	var layers []ocispec.Descriptor
	for _, s := range []string{"a", "b", "c", "a", "d", "e", "f"} {
		layers = append(layers, ocispec.Descriptor{Digest: digest.FromString(s)})
	}
	var tr tracker
	assert.NilError(t, fetchInOrder(context.Background(), tr.handler(), layers, 0))
	// Each distinct layer once; at most MaxConcurrentDownloads at a time; the first ones first.
	assert.Equal(t, len(tr.started), 6)
	assert.Check(t, tr.peak <= MaxConcurrentDownloads, "peak %d", tr.peak)
	seen := map[digest.Digest]bool{}
	for _, d := range tr.started[:MaxConcurrentDownloads] {
		seen[d] = true
	}
	for _, s := range []string{"a", "b", "c"} {
		assert.Check(t, seen[digest.FromString(s)], "%s not among the first started", s)
	}

	// The first error is returned, and stops layers not yet started.
	boom := errors.New("boom")
	var mu sync.Mutex
	n := 0
	h := images.HandlerFunc(func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		mu.Lock()
		n++
		mu.Unlock()
		if d.Digest == digest.FromString("a") {
			return nil, boom
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
			return nil, nil
		}
	})
	err := fetchInOrder(context.Background(), h, layers, 0)
	assert.Check(t, errors.Is(err, boom), "%v", err)
	assert.Check(t, n <= MaxConcurrentDownloads, "%d started", n)
}

// max-concurrent-downloads bounds the layers fetched at once.
func TestFetchInOrderLimit(t *testing.T) {
	var layers []ocispec.Descriptor
	for _, s := range []string{"a", "b", "c", "d"} {
		layers = append(layers, ocispec.Descriptor{Digest: digest.FromString(s)})
	}
	var tr tracker
	assert.NilError(t, fetchInOrder(context.Background(), tr.handler(), layers, 1))
	assert.Check(t, tr.peak == 1, "peak %d", tr.peak)
}

func TestMirrorHostsComeFirstForDockerHubOnly(t *testing.T) {
	s := New(nil, Config{Mirrors: []string{"http://127.0.0.1:5001/", "https://mirror.example/"}})
	hosts, err := s.hosts(nil)("docker.io")
	assert.NilError(t, err)
	assert.Assert(t, len(hosts) == 3)
	assert.Check(t, hosts[0].Host == "127.0.0.1:5001" && hosts[0].Scheme == "http")
	assert.Check(t, hosts[1].Host == "mirror.example" && hosts[1].Scheme == "https")
	assert.Check(t, hosts[2].Host == "registry-1.docker.io")
	assert.Check(t, hosts[0].Capabilities&docker.HostCapabilityPush == 0, "mirrors are never pushed to")
	hosts, err = s.hosts(nil)("registry.example:5000")
	assert.NilError(t, err)
	assert.Check(t, len(hosts) == 1 && hosts[0].Host == "registry.example:5000")
	assert.Check(t, s.uploadLimiter() != nil)
}
