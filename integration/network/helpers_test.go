package network

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
)

// dialIn connects to addr from inside the network namespace file nsPath: the socket is created there
// (a socket belongs to the namespace it was created in), then the thread returns to its own namespace.
func dialIn(nsPath, proto, addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- res{nil, err}
			return
		}
		var c net.Conn
		if proto == "udp-listen" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				c = pc.(*net.UDPConn)
			}
		} else {
			c, err = net.DialTimeout(proto, addr, 2*time.Second)
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// fetchIn sends an HTTP/1.0 GET from nsPath and returns the whole answer.
func fetchIn(nsPath, addr string) (string, error) {
	c, err := dialIn(nsPath, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// udpSend sends one datagram from nsPath.
func udpSend(nsPath, addr, msg string) error {
	c, err := dialIn(nsPath, "udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.WriteString(c, msg)
	return err
}

// listenUDPIn opens a UDP socket bound on addr inside nsPath (a container's namespace: SandboxKey).
func listenUDPIn(nsPath, addr string) (*net.UDPConn, error) {
	c, err := dialIn(nsPath, "udp-listen", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// otherMachine makes a second namespace joined to berthd's by a veth pair (10.99.0.1 on berthd's side,
// 10.99.0.2 on the other) and returns its file and berthd's address as seen from it. The namespace goes
// with the test's temp dir.
func otherMachine(t *testing.T, d *daemon.Daemon) (string, string) {
	t.Helper()
	p := filepath.Join(d.Dir, "other-ns")
	assert.NilError(t, os.WriteFile(p, nil, 0o444))
	out, err := exec.Command("unshare", "--net="+p, "ip", "link", "set", "lo", "up").CombinedOutput()
	assert.NilError(t, err, string(out))
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	hostNS, err := netns.GetFromPath(d.NetNS)
	assert.NilError(t, err)
	defer hostNS.Close()
	otherNS, err := netns.GetFromPath(p)
	assert.NilError(t, err)
	defer otherNS.Close()
	h, err := netlink.NewHandleAt(hostNS)
	assert.NilError(t, err)
	defer h.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "vext"
	assert.NilError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "vpeer", PeerNamespace: netlink.NsFd(int(otherNS))}))
	l, err := h.LinkByName("vext")
	assert.NilError(t, err)
	a, _ := netlink.ParseAddr("10.99.0.1/24")
	assert.NilError(t, h.AddrAdd(l, a))
	assert.NilError(t, h.LinkSetUp(l))
	o, err := netlink.NewHandleAt(otherNS)
	assert.NilError(t, err)
	defer o.Close()
	pl, err := o.LinkByName("vpeer")
	assert.NilError(t, err)
	a2, _ := netlink.ParseAddr("10.99.0.2/24")
	assert.NilError(t, o.AddrAdd(pl, a2))
	assert.NilError(t, o.LinkSetUp(pl))
	return p, "10.99.0.1"
}
