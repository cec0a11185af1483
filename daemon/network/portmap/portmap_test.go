package portmap

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestSpecsRangesAndPublishAll(t *testing.T) {
	s, err := Specs(map[string][]HostBinding{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8000-8010"}}},
		[]string{"80/tcp", "53/udp"}, true, netip.Addr{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(s, 2))
	assert.Check(t, is.Equal(s[0].HostLo, 8000))
	assert.Check(t, is.Equal(s[0].HostHi, 8010))
	assert.Check(t, is.Equal(s[1].ContainerPort, 53))
	assert.Check(t, is.Equal(s[1].Proto, "udp"))
	_, err = Specs(map[string][]HostBinding{"80/sctp": nil}, nil, false, netip.Addr{})
	assert.Check(t, is.ErrorContains(err, "invalid proto: sctp"))
	_, err = Specs(map[string][]HostBinding{"80/tcp": {{HostPort: "x"}}}, nil, false, netip.Addr{})
	assert.Check(t, is.ErrorContains(err, "invalid hostPort: x"))
}

func TestAllocatorConflictsAndRelease(t *testing.T) {
	a := NewAllocator()
	lo := netip.MustParseAddr("127.0.0.1")
	// A free port picked by the kernel, so the test does not depend on what the machine runs.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b, err := a.Allocate("one", netip.Addr{}, []Spec{{Proto: "tcp", ContainerPort: 80, HostIP: lo, HostLo: port, HostHi: port}})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(b[0].HostPort, port))
	// Held: the same port is refused by the allocator, and by the OS to anyone else.
	_, err = a.Allocate("two", netip.Addr{}, []Spec{{Proto: "tcp", ContainerPort: 80, HostIP: lo, HostLo: port, HostHi: port}})
	assert.Check(t, is.ErrorContains(err, "Bind for 127.0.0.1:"+strconv.Itoa(port)+" failed: port is already allocated"))
	_, err = a.Allocate("two", netip.Addr{}, []Spec{{Proto: "tcp", ContainerPort: 80, HostIP: netip.IPv4Unspecified(), HostLo: port, HostHi: port}})
	assert.Check(t, is.ErrorContains(err, "port is already allocated"))
	_, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	assert.Check(t, err != nil, "another program could bind a published port")
	a.Release("one")
	l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	assert.NilError(t, err)
	l.Close()
	// Ephemeral ports come in sequence.
	b, err = a.Allocate("e", netip.Addr{}, []Spec{{Proto: "udp", ContainerPort: 1, HostIP: lo}, {Proto: "udp", ContainerPort: 2, HostIP: lo}})
	assert.NilError(t, err)
	assert.Check(t, b[1].HostPort > b[0].HostPort)
	a.Release("e")
}

func TestAllocatorPortTakenByAnotherProgram(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	a := NewAllocator()
	_, err = a.Allocate("x", netip.MustParseAddr("172.17.0.2"), []Spec{{Proto: "tcp", ContainerPort: 80, HostIP: netip.MustParseAddr("127.0.0.1"), HostLo: port, HostHi: port}})
	assert.Check(t, is.ErrorContains(err, "failed to bind host port for 127.0.0.1:"+strconv.Itoa(port)+":172.17.0.2:80/tcp: address already in use"))
}
