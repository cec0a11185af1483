package buildkit

import (
	"context"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/solver/pb"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fakeNetworks records the sandboxes a provider holds; joinErr is what Join answers.
type fakeNetworks struct {
	mu       sync.Mutex
	joinErr  error
	live     map[string]string // id -> namespace path
	joined   map[string]string // id -> network
	released []string
	// releaseCtxErr is the error of the context ReleaseSandbox was given.
	releaseCtxErr error
}

func newFakeNetworks() *fakeNetworks {
	return &fakeNetworks{live: map[string]string{}, joined: map[string]string{}}
}

func (f *fakeNetworks) CreateSandbox(ctx context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := "/run/test/netns/" + id[:12]
	f.live[id] = p
	return p, nil
}

func (f *fakeNetworks) Join(ctx context.Context, id, nsPath, network string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joinErr != nil {
		return f.joinErr
	}
	f.joined[id] = network
	return nil
}

func (f *fakeNetworks) ReleaseSandbox(ctx context.Context, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseCtxErr = ctx.Err()
	delete(f.live, id)
	delete(f.joined, id)
	f.released = append(f.released, id)
}

func specWithNetNS() *specs.Spec {
	return &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.MountNamespace},
	}}}
}

func TestDefaultProviderJoinsBridgeAndReleases(t *testing.T) {
	f := newFakeNetworks()
	p := NetworkProviders(f)[pb.NetMode_UNSET]
	ctx, cancel := context.WithCancel(context.Background())
	ns, err := p.New(ctx, "buildkitsandbox")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(f.live, 1))
	var id, path string
	for id, path = range f.live {
	}
	assert.Check(t, is.Len(id, 64))
	assert.Check(t, is.Equal(f.joined[id], "bridge"))

	s := specWithNetNS()
	assert.NilError(t, ns.Set(s))
	assert.Check(t, is.DeepEqual(s.Linux.Namespaces[1], specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path}))
	assert.Check(t, is.Len(s.Linux.Namespaces, 3))

	// A cancelled build still releases its sandbox, with a context that is not cancelled, and only once.
	cancel()
	assert.NilError(t, ns.Close())
	assert.NilError(t, ns.Close())
	assert.Check(t, is.Len(f.live, 0))
	assert.Check(t, is.DeepEqual(f.released, []string{id}))
	assert.Check(t, is.Nil(f.releaseCtxErr), "released with a cancelled context")
}

func TestDefaultProviderEachStepOwnSandbox(t *testing.T) {
	f := newFakeNetworks()
	p := NetworkProviders(f)[pb.NetMode_UNSET]
	a, err := p.New(context.Background(), "")
	assert.NilError(t, err)
	b, err := p.New(context.Background(), "")
	assert.NilError(t, err)
	assert.Check(t, is.Len(f.live, 2))
	assert.NilError(t, a.Close())
	assert.Check(t, is.Len(f.live, 1))
	assert.NilError(t, b.Close())
	assert.Check(t, is.Len(f.live, 0))
}

func TestDefaultProviderJoinFailureReleases(t *testing.T) {
	f := newFakeNetworks()
	f.joinErr = errdefs.ErrUnavailable.WithMessage("no addresses left")
	p := NetworkProviders(f)[pb.NetMode_UNSET]
	_, err := p.New(context.Background(), "")
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	assert.Check(t, is.ErrorContains(err, "attach build step to network bridge"))
	assert.Check(t, is.Len(f.live, 0))
	assert.Check(t, is.Len(f.released, 1))
}

// Under -b none the default network does not exist: RUN gets a loopback-only namespace, as docker run.
func TestDefaultProviderWithoutBridge(t *testing.T) {
	f := newFakeNetworks()
	f.joinErr = errdefs.ErrNotFound.WithMessage("network bridge not found")
	p := NetworkProviders(f)[pb.NetMode_UNSET]
	ns, err := p.New(context.Background(), "")
	assert.NilError(t, err)
	assert.Check(t, is.Len(f.live, 0))
	s := specWithNetNS()
	assert.NilError(t, ns.Set(s))
	assert.Check(t, is.Equal(s.Linux.Namespaces[1].Path, ""))
	assert.NilError(t, ns.Close())

	// Later steps do not try again.
	_, err = p.New(context.Background(), "")
	assert.NilError(t, err)
	assert.Check(t, is.Len(f.released, 1))
}

func TestHostAndNoneProviders(t *testing.T) {
	f := newFakeNetworks()
	ps := NetworkProviders(f)
	host, err := ps[pb.NetMode_HOST].New(context.Background(), "")
	assert.NilError(t, err)
	s := specWithNetNS()
	assert.NilError(t, host.Set(s))
	for _, ns := range s.Linux.Namespaces {
		assert.Check(t, ns.Type != specs.NetworkNamespace, "host mode keeps a network namespace entry")
	}
	none, err := ps[pb.NetMode_NONE].New(context.Background(), "")
	assert.NilError(t, err)
	s = specWithNetNS()
	assert.NilError(t, none.Set(s))
	assert.Check(t, is.DeepEqual(s.Linux.Namespaces[1], specs.LinuxNamespace{Type: specs.NetworkNamespace}))
	assert.Check(t, is.Len(f.live, 0))
}

func TestDNSConfig(t *testing.T) {
	assert.Check(t, (*DNSConfig)(nil).oci() == nil)
	assert.Check(t, (&DNSConfig{}).oci() == nil)
	c := (&DNSConfig{Nameservers: []string{"10.0.0.1"}}).oci()
	assert.Assert(t, c != nil)
	assert.Check(t, is.DeepEqual(c.Nameservers, []string{"10.0.0.1"}))
}
