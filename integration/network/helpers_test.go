package network

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/berthd/berthd/integration/internal/netnstest"
)

// dialIn connects to addr from inside the network namespace file nsPath.
func dialIn(nsPath, proto, addr string) (net.Conn, error) {
	return netnstest.Dial(nsPath, proto, addr, 2*time.Second)
}

// fetchIn sends an HTTP/1.0 GET from nsPath and returns the whole answer.
func fetchIn(nsPath, addr string) (string, error) {
	return netnstest.Fetch(nsPath, addr, 2*time.Second)
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
	return netnstest.ListenUDP(nsPath, addr)
}

// otherMachine makes a second namespace joined to berthd's by a veth pair and returns its file and
// berthd's address as seen from it.
func otherMachine(t *testing.T, d *daemon.Daemon) (string, string) {
	t.Helper()
	return netnstest.OtherMachine(t, d.NetNS, d.Dir), netnstest.HostAddr
}
