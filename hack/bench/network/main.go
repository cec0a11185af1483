// Command network measures berthd's networking beside Debian's dockerd, each in a network namespace of
// its own with its default bridge and iptables on (nothing touches the host's namespace):
//
//  1. `docker run --rm busybox true` on the default bridge vs --network none (median of -runs);
//  2. -conns short TCP connections (connect, GET, read to EOF) to a published port, vs the same server
//     with --network host, from 127.0.0.1 in the daemon's namespace and from "another machine" (a second
//     namespace joined to the daemon's by a veth pair); the daemon's CPU (plus its docker-proxy
//     children) during each loop;
//  3. `docker start` of a container publishing -ports ports;
//  4. -nets × network create + rm.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	runs := flag.Int("runs", 10, "runs per latency figure")
	conns := flag.Int("conns", 20000, "short TCP connections per figure")
	ports := flag.Int("ports", 1000, "ports published by one container")
	nets := flag.Int("nets", 100, "network create+rm cycles")
	flag.Parse()

	archive, err := benchutil.BusyboxArchive()
	check(err)

	// loopRes is one connection loop: rate, daemon CPU, failed connections.
	type loopRes struct {
		rate float64
		cpu  time.Duration
		errs int
	}
	type res struct {
		bridge, none          time.Duration
		pub, host             loopRes // from 127.0.0.1
		extPub, extHost       loopRes // from the other machine
		startPorts, startNone time.Duration
		netCycle              time.Duration
	}
	measure := func(d *benchutil.Daemon) res {
		docker := func(args ...string) string {
			out, err := d.Docker(nil, args...)
			check(err)
			return out
		}
		_, err := d.Docker(archive, "load")
		check(err)
		var r res
		timeRun := func(args ...string) time.Duration {
			return benchutil.Timed(*runs, func() { docker(args...) })
		}
		r.bridge = timeRun("run", "--rm", "busybox", "true")
		r.none = timeRun("run", "--rm", "--network", "none", "busybox", "true")

		httpd := []string{"busybox", "sh", "-c", "mkdir -p /w && echo ok > /w/index.html && exec httpd -f -p %s -h /w"}
		withPort := func(p string) []string {
			out := append([]string(nil), httpd...)
			out[len(out)-1] = fmt.Sprintf(out[len(out)-1], p)
			return out
		}
		docker(append([]string{"run", "-d", "--name", "pub", "-p", "18080:80"}, withPort("80")...)...)
		docker(append([]string{"run", "-d", "--name", "hostsrv", "--network", "host"}, withPort("18081")...)...)
		loop := func(ns, addr string) loopRes {
			waitUp(ns, addr)
			cpu0 := benchutil.CPU(d.Pid()) + benchutil.ChildrenCPU(d.Pid(), "docker-proxy")
			t := time.Now()
			errs := connLoop(ns, addr, *conns)
			el := time.Since(t)
			cpu := benchutil.CPU(d.Pid()) + benchutil.ChildrenCPU(d.Pid(), "docker-proxy") - cpu0
			return loopRes{rate: float64(*conns) / el.Seconds(), cpu: cpu, errs: errs}
		}
		r.pub = loop(d.NetNS(), "127.0.0.1:18080")
		r.host = loop(d.NetNS(), "127.0.0.1:18081")
		other, addr, cleanup := otherMachine(d)
		r.extPub = loop(other, addr+":18080")
		r.extHost = loop(other, addr+":18081")
		cleanup()
		docker("rm", "-f", "pub", "hostsrv")

		docker("create", "--name", "many", "-p", fmt.Sprintf("20000-%d:20000-%d", 20000+*ports-1, 20000+*ports-1), "busybox", "sleep", "300")
		t := time.Now()
		docker("start", "many")
		r.startPorts = time.Since(t)
		docker("create", "--name", "few", "busybox", "sleep", "300")
		t = time.Now()
		docker("start", "few")
		r.startNone = time.Since(t)
		docker("rm", "-f", "many", "few")

		t = time.Now()
		for i := 0; i < *nets; i++ {
			docker("network", "create", fmt.Sprintf("bench%d", i))
			docker("network", "rm", fmt.Sprintf("bench%d", i))
		}
		r.netCycle = time.Since(t) / time.Duration(*nets)
		return r
	}

	rb, rd, err := benchutil.OnBoth(*bin, *skipDockerd, func(d *benchutil.Daemon) (res, error) { return measure(d), nil })
	check(err)
	fmt.Printf("%-52s %14s %14s\n", "", "berthd", "dockerd")
	row := func(name string, a, b any) { fmt.Printf("%-52s %14v %14v\n", name, a, b) }
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	row("run --rm true, default bridge (median)", ms(rb.bridge), ms(rd.bridge))
	row("run --rm true, --network none (median)", ms(rb.none), ms(rd.none))
	loops := func(from string, b1, b2, d1, d2 loopRes) {
		row(fmt.Sprintf("%d conns to published port from %s (/s)", *conns, from), fmt.Sprintf("%.0f", b1.rate), fmt.Sprintf("%.0f", d1.rate))
		row("  same server, --network host (/s)", fmt.Sprintf("%.0f", b2.rate), fmt.Sprintf("%.0f", d2.rate))
		row("  published / host", fmt.Sprintf("%.2f", b1.rate/b2.rate), fmt.Sprintf("%.2f", d1.rate/d2.rate))
		row("  failed connections (published / host)", fmt.Sprintf("%d/%d", b1.errs, b2.errs), fmt.Sprintf("%d/%d", d1.errs, d2.errs))
		row("  daemon+proxy CPU during published loop", ms(b1.cpu), ms(d1.cpu))
	}
	loops("127.0.0.1", rb.pub, rb.host, rd.pub, rd.host)
	loops("other machine", rb.extPub, rb.extHost, rd.extPub, rd.extHost)
	row(fmt.Sprintf("start with %d published ports", *ports), ms(rb.startPorts), ms(rd.startPorts))
	row("start without ports", ms(rb.startNone), ms(rd.startNone))
	row("network create + rm (mean)", ms(rb.netCycle), ms(rd.netCycle))
}

// otherMachine makes "another machine": a namespace of its own (a file under d's dir) joined to d's by a
// veth pair, 10.99.0.1 on d's side and 10.99.0.2 on the other. It returns the namespace, d's address as
// seen from it, and the clean-up (the veth goes with the namespace).
func otherMachine(d *benchutil.Daemon) (string, string, func()) {
	p := filepath.Join(d.Dir, "other-ns")
	check(os.WriteFile(p, nil, 0o444))
	if out, err := exec.Command("unshare", "--net="+p, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		check(fmt.Errorf("other machine: %v: %s", err, out))
	}
	cleanup := func() { _ = unix.Unmount(p, unix.MNT_DETACH) }
	daemonNS, err := netns.GetFromPath(d.NetNS())
	check(err)
	defer daemonNS.Close()
	otherNS, err := netns.GetFromPath(p)
	check(err)
	defer otherNS.Close()
	h, err := netlink.NewHandleAt(daemonNS)
	check(err)
	defer h.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "vbench"
	check(h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "vpeer", PeerNamespace: netlink.NsFd(int(otherNS))}))
	l, err := h.LinkByName("vbench")
	check(err)
	a, _ := netlink.ParseAddr("10.99.0.1/24")
	check(h.AddrAdd(l, a))
	check(h.LinkSetUp(l))
	o, err := netlink.NewHandleAt(otherNS)
	check(err)
	defer o.Close()
	pl, err := o.LinkByName("vpeer")
	check(err)
	a2, _ := netlink.ParseAddr("10.99.0.2/24")
	check(o.AddrAdd(pl, a2))
	check(o.LinkSetUp(pl))
	return p, "10.99.0.1", cleanup
}

// inNS runs f on a thread inside the namespace nsPath (sockets made there stay there).
func inNS(nsPath string, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		check(err)
		defer orig.Close()
		target, err := os.Open(nsPath)
		check(err)
		defer target.Close()
		check(unix.Setns(int(target.Fd()), unix.CLONE_NEWNET))
		f()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
}

func fetch(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err == nil && !bytes.Contains(b, []byte("ok")) {
		err = fmt.Errorf("bad answer %q", b)
	}
	return err
}

func waitUp(ns, addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		inNS(ns, func() { err = fetch(addr) })
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			check(fmt.Errorf("%s not answering: %v", addr, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// connLoop makes n sequential short connections; it returns how many failed.
func connLoop(ns, addr string, n int) int {
	errs := 0
	inNS(ns, func() {
		for i := 0; i < n; i++ {
			if fetch(addr) != nil {
				errs++
			}
		}
	})
	return errs
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
