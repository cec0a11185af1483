// Command dns measures the embedded DNS server of berthd beside Debian's dockerd, each in a network
// namespace of its own (nothing touches the host's namespace):
//
//  1. p50/p99 of -lookups A queries for a container name, sent from inside a container's network
//     namespace to 127.0.0.11:53 (one UDP socket, one query at a time);
//  2. time to an answer for an external name when the only upstream is dead (an unassigned address
//     on the container's network: no ARP reply, no ICMP): SERVFAIL or nothing (median of -runs);
//  3. `docker-compose up -d` (Debian's 1.29) of a project of -services services, timed from the start of
//     the command until every service name answers from inside the first service's container.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
	"github.com/berthd/berthd/hack/mkimage"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	lookups := flag.Int("lookups", 10000, "lookups of a container name")
	runs := flag.Int("runs", 3, "external queries with a dead upstream")
	services := flag.Int("services", 10, "services of the compose project")
	flag.Parse()

	img, err := mkimage.BusyboxImage("busybox:latest")
	check(err)
	var archive bytes.Buffer
	check(mkimage.WriteSave(&archive, []mkimage.Image{img}))

	type res struct {
		p50, p99, max time.Duration
		errors        int
		dead          time.Duration
		deadRcode     string
		compose       time.Duration
	}
	measure := func(d *benchutil.Daemon) res {
		docker := func(args ...string) string {
			cmd := exec.Command("docker", args...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				check(fmt.Errorf("%s: docker %v: %v: %s", d.Name, args, err, out))
			}
			return strings.TrimSpace(string(out))
		}
		load := exec.Command("docker", "load")
		load.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
		load.Stdin = bytes.NewReader(archive.Bytes())
		if out, err := load.CombinedOutput(); err != nil {
			check(fmt.Errorf("load: %v: %s", err, out))
		}
		docker("network", "create", "--subnet", "10.77.0.0/24", "benchdns")
		docker("run", "-d", "--name", "srv", "--network", "benchdns", "busybox", "sleep", "600")
		docker("run", "-d", "--name", "cli", "--network", "benchdns", "--dns", "10.77.0.250", "busybox", "sleep", "600")
		pid := docker("inspect", "-f", "{{.State.Pid}}", "cli")
		ns := "/proc/" + pid + "/ns/net"
		var r res
		var ds []time.Duration
		c := dialIn(ns)
		dc := &dns.Conn{Conn: c}
		q := new(dns.Msg)
		q.SetQuestion("srv.", dns.TypeA)
		for i := 0; i < *lookups; i++ {
			q.Id = dns.Id()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			t := time.Now()
			err := dc.WriteMsg(q)
			var a *dns.Msg
			if err == nil {
				a, err = dc.ReadMsg()
			}
			if err != nil || len(a.Answer) != 1 {
				r.errors++
				continue
			}
			ds = append(ds, time.Since(t))
		}
		c.Close()
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		if len(ds) > 0 {
			r.p50, r.p99, r.max = ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
		}
		var dead []time.Duration
		for i := 0; i < *runs; i++ {
			c := dialIn(ns)
			dc := &dns.Conn{Conn: c}
			q := new(dns.Msg)
			q.SetQuestion(fmt.Sprintf("x%d.example.", i), dns.TypeA)
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			t := time.Now()
			check(dc.WriteMsg(q))
			a, err := dc.ReadMsg()
			dead = append(dead, time.Since(t))
			if err != nil {
				r.deadRcode = "no answer (60 s)"
			} else {
				r.deadRcode = dns.RcodeToString[a.Rcode]
			}
			c.Close()
		}
		r.dead = benchutil.Median(dead)
		docker("rm", "-f", "srv", "cli")
		docker("network", "rm", "benchdns")
		r.compose = composeUp(d, *services, docker)
		return r
	}

	rb, rd, err := benchutil.OnBoth(*bin, *skipDockerd, func(d *benchutil.Daemon) (res, error) { return measure(d), nil })
	check(err)
	fmt.Printf("%-52s %14s %14s\n", "", "berthd", "dockerd")
	row := func(name string, a, b any) { fmt.Printf("%-52s %14v %14v\n", name, a, b) }
	us := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	row(fmt.Sprintf("container name lookup p50 (%d)", *lookups), us(rb.p50), us(rd.p50))
	row("container name lookup p99", us(rb.p99), us(rd.p99))
	row("container name lookup max", us(rb.max), us(rd.max))
	row("failed lookups", rb.errors, rd.errors)
	row("external name, dead upstream: time to answer (median)", rb.dead.Round(time.Millisecond), rd.dead.Round(time.Millisecond))
	row("  answer", rb.deadRcode, rd.deadRcode)
	row(fmt.Sprintf("docker-compose up -d, %d services, to all names", *services), rb.compose.Round(time.Millisecond), rd.compose.Round(time.Millisecond))
}

// composeUp times `docker-compose up -d` of n services until each service name resolves from the first
// service's container; it takes the project down again.
func composeUp(d *benchutil.Daemon, n int, docker func(...string) string) time.Duration {
	dir, err := os.MkdirTemp(d.Dir, "compose")
	check(err)
	var y strings.Builder
	y.WriteString("version: \"2.4\"\nservices:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&y, "  s%d:\n    image: busybox\n    command: sleep 600\n", i)
	}
	check(os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(y.String()), 0o644))
	compose := func(args ...string) {
		cmd := exec.Command("docker-compose", append([]string{"-p", "benchc"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
		if out, err := cmd.CombinedOutput(); err != nil {
			check(fmt.Errorf("%s: docker-compose %v: %v: %s", d.Name, args, err, out))
		}
	}
	start := time.Now()
	compose("up", "-d")
	c := dialIn("/proc/" + docker("inspect", "-f", "{{.State.Pid}}", "benchc_s0_1") + "/ns/net")
	dc := &dns.Conn{Conn: c}
	for i := 0; i < n; {
		if time.Since(start) > 2*time.Minute {
			check(fmt.Errorf("%s: service s%d never resolved", d.Name, i))
		}
		q := new(dns.Msg)
		q.SetQuestion(fmt.Sprintf("s%d.", i), dns.TypeA)
		_ = c.SetDeadline(time.Now().Add(time.Second))
		var a *dns.Msg
		err := dc.WriteMsg(q)
		if err == nil {
			a, err = dc.ReadMsg()
		}
		if err == nil && len(a.Answer) > 0 {
			i++
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	c.Close()
	compose("down", "-v")
	return took
}

// dialIn makes a UDP socket connected to 127.0.0.11:53 inside nsPath; the socket stays there after the
// thread returns to its own namespace.
func dialIn(nsPath string) net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		check(err)
		defer orig.Close()
		target, err := os.Open(nsPath)
		check(err)
		defer target.Close()
		check(unix.Setns(int(target.Fd()), unix.CLONE_NEWNET))
		c, err := net.Dial("udp", "127.0.0.11:53")
		check(err)
		check(unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET))
		runtime.UnlockOSThread()
		ch <- c
	}()
	return <-ch
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
