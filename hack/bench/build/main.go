// Command build measures classic Dockerfile builds (DOCKER_BUILDKIT=0) on berthd beside Debian's dockerd,
// in the same run, each daemon fresh with busybox loaded: a 20-step Dockerfile (RUNs, metadata, COPYs of
// a 50 MB tree) built cold (no cache), warm (every step a cache hit) and with one small COPY source
// changed (a miss from that step on). Each figure is the median of -runs runs; cold runs after the first
// use --no-cache. Both daemons run at once and their builds alternate. A warm build is also timed against
// a server that only reads the context (the floor: the CLI's own tarring and sending), and the daemons'
// and the CLI's CPU time in a warm build are shown, which the machine's load does not inflate as much.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

type figures struct {
	cold, warm, changed time.Duration
	// warmCPU is the daemon's CPU time in a warm build, cliCPU the docker CLI's.
	warmCPU, cliCPU time.Duration
}

// series collects one daemon's (or the floor server's) timings.
type series struct {
	d                               *benchutil.Daemon
	cold, warm, changed, wcpu, ccpu []time.Duration
}

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	sizeMB := flag.Int("size", 50, "size of the copied tree in MB")
	runs := flag.Int("runs", 3, "runs per figure")
	flag.Parse()
	// The figures are the classic builder's.
	check(os.Setenv("DOCKER_BUILDKIT", "0"))

	work, err := os.MkdirTemp("/tmp", "bench-build")
	check(err)
	defer os.RemoveAll(work)
	ctx := filepath.Join(work, "ctx")
	check(benchutil.WriteBuildContext(ctx, *sizeMB))
	archive, err := benchutil.BusyboxArchiveFile(work)
	check(err)

	// Both daemons run at once and their builds alternate, so that a busy minute on the machine weighs
	// on both figures alike.
	b, err := benchutil.StartBerthd(*bin)
	check(err)
	defer b.Cleanup()
	all := []*series{{d: b}}
	if !*skipDockerd {
		d, err := benchutil.StartDockerd()
		if err != nil {
			b.Cleanup()
			check(err)
		}
		defer d.Cleanup()
		all = append(all, &series{d: d})
	}
	fl, err := startFloor(work)
	check(err)
	defer fl.srv.Close()
	floor := &series{d: fl.d}
	if err := measure(all, floor, archive, ctx, *runs); err != nil {
		for _, s := range all {
			s.d.Cleanup()
		}
		check(err)
	}
	fb := all[0].figures()
	var fd figures
	if len(all) > 1 {
		fd = all[1].figures()
	}
	ff := floor.figures()
	fmt.Printf("classic build, 20 steps, %d MB copied (median of %d)\n", *sizeMB, *runs)
	tab := benchutil.Table{Width: 24}
	tab.Header()
	row := tab.Row
	row("cold", fb.cold, fd.cold)
	row("warm (all cache)", fb.warm, fd.warm)
	row("one COPY changed", fb.changed, fd.changed)
	row("  daemon CPU, warm", fb.warmCPU, fd.warmCPU)
	row("  CLI CPU, warm", fb.cliCPU, fd.cliCPU)
	fmt.Printf("%-24s %12s  (docker build against a server that reads the context and discards it:\n", "warm floor (CLI + send)", ff.warm.Round(time.Millisecond))
	fmt.Printf("%-24s %12s   no daemon answers faster; CLI CPU %s)\n", "", "", ff.cliCPU.Round(time.Millisecond))
}

func (s *series) figures() figures {
	return figures{benchutil.Median(s.cold), benchutil.Median(s.warm), benchutil.Median(s.changed), benchutil.Median(s.wcpu), benchutil.Median(s.ccpu)}
}

// childrenCPU is the CPU time of this process's waited-for children (the docker CLI runs).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warmBuild times one all-cache build on s, with the daemon's (when it has a process) and the CLI's CPU.
func (s *series) warmBuild(ctx string) error {
	var d0 time.Duration
	pid := s.d.Name != "floor"
	if pid {
		d0 = benchutil.CPU(s.d.Pid())
	}
	c0 := childrenCPU()
	t, err := s.d.TimeDocker("build", "-q", "-t", "bench", ctx)
	if err != nil {
		return err
	}
	s.warm = append(s.warm, t)
	s.ccpu = append(s.ccpu, childrenCPU()-c0)
	if pid {
		s.wcpu = append(s.wcpu, benchutil.CPU(s.d.Pid())-d0)
	}
	return nil
}

func measure(all []*series, floor *series, archive, ctx string, runs int) error {
	for _, s := range all {
		if _, err := s.d.TimeDocker("load", "-i", archive); err != nil {
			return err
		}
	}
	for i := 0; i < runs; i++ {
		args := []string{"build", "-q", "-t", "bench", ctx}
		if i > 0 {
			args = []string{"build", "-q", "--no-cache", "-t", "bench", ctx}
		}
		for _, s := range all {
			t, err := s.d.TimeDocker(args...)
			if err != nil {
				return err
			}
			s.cold = append(s.cold, t)
		}
		for _, s := range append(all, floor) {
			if err := s.warmBuild(ctx); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(ctx, "small.txt"), []byte(fmt.Sprintf("changed %d %d\n", i, time.Now().UnixNano())), 0o644); err != nil {
			return err
		}
		for _, s := range all {
			t, err := s.d.TimeDocker("build", "-q", "-t", "bench", ctx)
			if err != nil {
				return err
			}
			s.changed = append(s.changed, t)
		}
	}
	return nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
