// Package netnstest gives integration tests sockets inside network namespaces they made (berthd's own,
// a container's, "another machine" joined by a veth pair), so tests reach published ports and servers
// there without touching the host's network.
package netnstest

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

// Do runs fn on a thread inside the namespace file nsPath, then returns the thread to its own namespace.
// A socket belongs to the namespace it was made in, so sockets fn opens stay there while the rest of the
// test runs anywhere. A thread that cannot get home stays locked, and the runtime discards it.
func Do(nsPath string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			ch <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// Dial connects to addr ("tcp" or "udp") from inside nsPath.
func Dial(nsPath, proto, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := Do(nsPath, func() (err error) {
		c, err = net.DialTimeout(proto, addr, timeout)
		return err
	})
	return c, err
}

// Listen opens a TCP listener on addr inside nsPath.
func Listen(nsPath, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(nsPath, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// ListenUDP opens a UDP socket bound on addr inside nsPath.
func ListenUDP(nsPath, addr string) (*net.UDPConn, error) {
	var c net.PacketConn
	err := Do(nsPath, func() (err error) {
		c, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// Fetch sends an HTTP/1.0 GET to addr from inside nsPath and returns the whole answer.
func Fetch(nsPath, addr string, timeout time.Duration) (string, error) {
	c, err := Dial(nsPath, "tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout + time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// OtherMachine makes a second namespace, file dir/other-ns, joined to the namespace at hostNS by a veth
// pair: HostAddr on hostNS's side (vext), OtherAddr on the other (vpeer). It goes away with the test.
func OtherMachine(t *testing.T, hostNS, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "other-ns")
	assert.NilError(t, os.WriteFile(p, nil, 0o444))
	out, err := exec.Command("unshare", "--net="+p, "ip", "link", "set", "lo", "up").CombinedOutput()
	assert.NilError(t, err, string(out))
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	hostH, err := netns.GetFromPath(hostNS)
	assert.NilError(t, err)
	defer hostH.Close()
	otherH, err := netns.GetFromPath(p)
	assert.NilError(t, err)
	defer otherH.Close()
	h, err := netlink.NewHandleAt(hostH)
	assert.NilError(t, err)
	defer h.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "vext"
	assert.NilError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "vpeer", PeerNamespace: netlink.NsFd(int(otherH))}))
	l, err := h.LinkByName("vext")
	assert.NilError(t, err)
	a, _ := netlink.ParseAddr(HostAddr + "/24")
	assert.NilError(t, h.AddrAdd(l, a))
	assert.NilError(t, h.LinkSetUp(l))
	o, err := netlink.NewHandleAt(otherH)
	assert.NilError(t, err)
	defer o.Close()
	pl, err := o.LinkByName("vpeer")
	assert.NilError(t, err)
	a2, _ := netlink.ParseAddr(OtherAddr + "/24")
	assert.NilError(t, o.AddrAdd(pl, a2))
	assert.NilError(t, o.LinkSetUp(pl))
	return p
}

// The two ends of OtherMachine's veth pair.
const (
	HostAddr  = "10.99.0.1"
	OtherAddr = "10.99.0.2"
)
