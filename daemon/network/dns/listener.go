package dns

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/miekg/dns"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// Listener is the pair of sockets serving one container.
type Listener struct {
	udp, tcp *dns.Server
}

// Start serves container key inside the namespace file nsPath as cfg says. A second Start
// for the same key replaces the first (upstreams changed, or a restore). fresh says the namespace has
// never had our rules (a new sandbox): the jumps to our chains are added only then.
func (r *Resolver) Start(ctx context.Context, key, nsPath string, cfg Config, fresh bool) error {
	pc, ln, err := openIn(nsPath, fresh)
	if err != nil {
		return err
	}
	h := r.Handler(key, nsPath, cfg)
	l := &Listener{
		udp: &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: ln, Handler: h},
	}
	go func() {
		if err := l.udp.ActivateAndServe(); err != nil {
			log.G(ctx).WithError(err).Debug("dns: udp server ended")
		}
	}()
	go func() {
		if err := l.tcp.ActivateAndServe(); err != nil {
			log.G(ctx).WithError(err).Debug("dns: tcp server ended")
		}
	}()
	r.mu.Lock()
	old := r.listeners[key]
	r.listeners[key] = l
	r.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

// Stop ends the sockets of key (the namespace is going away with them).
func (r *Resolver) Stop(key string) {
	r.mu.Lock()
	l := r.listeners[key]
	delete(r.listeners, key)
	r.mu.Unlock()
	if l != nil {
		l.close()
	}
}

// Serving reports whether key has a listener.
func (r *Resolver) Serving(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listeners[key] != nil
}

func (l *Listener) close() {
	// Shutdown closes the sockets; a server not yet started returns an error we do not care about.
	_ = l.udp.Shutdown()
	_ = l.tcp.Shutdown()
}

// openIn opens the sockets inside nsPath and programs the redirection there (iptables runs as a child
// of the thread in the namespace, so it inherits it).
func openIn(nsPath string, fresh bool) (pc net.PacketConn, ln net.Listener, err error) {
	err = inNetns(nsPath, func() error {
		pc, ln, err = listenAndRedirect(fresh)
		return err
	})
	if err != nil {
		if pc != nil {
			pc.Close()
			ln.Close()
		}
		return nil, nil, err
	}
	return pc, ln, nil
}

// dialIn connects to addr over a socket made inside nsPath. A socket stays in the namespace it was
// made in, so only the dial runs there.
func dialIn(nsPath, network, addr string, timeout time.Duration) (c net.Conn, err error) {
	err = inNetns(nsPath, func() error {
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	if err != nil && c != nil {
		c.Close()
		return nil, err
	}
	return c, err
}

// inNetns runs fn on a thread that enters nsPath and leaves it again. A thread that cannot return
// stays locked and dies with its goroutine: it must never run other Go code.
func inNetns(nsPath string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- errors.Wrap(err, "open container netns")
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- errors.Wrap(err, "enter container netns")
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- errors.Wrap(err, "return to the daemon's netns")
			return
		}
		runtime.UnlockOSThread()
		ch <- ferr
	}()
	return <-ch
}

func listenAndRedirect(fresh bool) (net.PacketConn, net.Listener, error) {
	pc, err := net.ListenPacket("udp4", Addr+":0")
	if err != nil {
		return nil, nil, errors.Wrap(err, "dns: listen udp")
	}
	ln, err := net.Listen("tcp4", Addr+":0")
	if err != nil {
		pc.Close()
		return nil, nil, errors.Wrap(err, "dns: listen tcp")
	}
	rules := Rules(pc.LocalAddr().(*net.UDPAddr).Port, ln.Addr().(*net.TCPAddr).Port, fresh)
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = bytes.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		pc.Close()
		ln.Close()
		return nil, nil, errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("dns: program redirection in the container: %v: %s", err, bytes.TrimSpace(out)))
	}
	return pc, ln, nil
}

// Rules is the iptables-restore input of the container namespace: 127.0.0.11:53 to our ports and the
// replies back from :53, in dockerd's chain names. Declaring the chains flushes them, so a re-run
// (restore) replaces the ports; the jumps from the built-in chains are added once.
func Rules(udpPort, tcpPort int, fresh bool) []byte {
	var b bytes.Buffer
	b.WriteString("*nat\n:DOCKER_OUTPUT - [0:0]\n:DOCKER_POSTROUTING - [0:0]\n")
	if fresh {
		fmt.Fprintf(&b, "-A OUTPUT -d %s/32 -j DOCKER_OUTPUT\n-A POSTROUTING -d %s/32 -j DOCKER_POSTROUTING\n", Addr, Addr)
	}
	fmt.Fprintf(&b, "-A DOCKER_OUTPUT -d %s/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination %s:%d\n", Addr, Addr, tcpPort)
	fmt.Fprintf(&b, "-A DOCKER_OUTPUT -d %s/32 -p udp -m udp --dport 53 -j DNAT --to-destination %s:%d\n", Addr, Addr, udpPort)
	fmt.Fprintf(&b, "-A DOCKER_POSTROUTING -s %s/32 -p tcp -m tcp --sport %d -j SNAT --to-source :53\n", Addr, tcpPort)
	fmt.Fprintf(&b, "-A DOCKER_POSTROUTING -s %s/32 -p udp -m udp --sport %d -j SNAT --to-source :53\n", Addr, udpPort)
	b.WriteString("COMMIT\n")
	return b.Bytes()
}
