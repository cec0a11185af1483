// Command network measures what BuildKit RUN networking costs: a Dockerfile of 5 RUN steps built with
// buildx (no cache, so every RUN runs) on the default network (a namespace and an endpoint on the
// bridge per RUN) and with --network none (no endpoint), exported to a local directory, on berthd
// and, unless -no-dockerd, on Debian's dockerd in a network namespace of its own. Each figure is the median of -runs builds after one
// warm-up. An extra beside hack/bench/build, which measures the classic builder: run it with
// `go run ./hack/bench/build/network -berthd bin/berthd`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
	"github.com/berthd/berthd/hack/testenv/buildx"
)

const dockerfile = `FROM busybox
RUN echo one > /r1
RUN echo two > /r2
RUN echo three > /r3
RUN echo four > /r4
RUN echo five > /r5
`

type figures struct{ bridge, none time.Duration }

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	runs := flag.Int("runs", 5, "builds per figure")
	flag.Parse()

	work, err := os.MkdirTemp("/tmp", "bench-bknet")
	check(err)
	defer os.RemoveAll(work)
	ctx := filepath.Join(work, "ctx")
	check(os.MkdirAll(ctx, 0o755))
	check(os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644))
	archive, err := benchutil.BusyboxArchiveFile(work)
	check(err)
	fb, fd, err := benchutil.OnBoth(*bin, *skipDockerd, func(d *benchutil.Daemon) (figures, error) {
		return measure(d, archive, ctx, *runs)
	})
	check(err)
	fmt.Printf("BuildKit build of 5 RUN steps, no cache (median of %d)\n", *runs)
	tab := benchutil.Table{Width: 22}
	tab.Header()
	row := tab.Row
	row("default network", fb.bridge, fd.bridge)
	row("--network none", fb.none, fd.none)
	perRun := func(f figures) time.Duration { return ((f.bridge - f.none) / 5).Round(100 * time.Microsecond) }
	row("bridge cost per RUN", perRun(fb), perRun(fd))
}

func measure(d *benchutil.Daemon, archive, ctx string, runs int) (figures, error) {
	var f figures
	// The CLI's config directory of benchutil.Daemon.Docker, with buildx as its plugin.
	if err := buildx.ConfigDir(filepath.Join(d.Dir, "cli")); err != nil {
		return f, err
	}
	if _, err := d.TimeDocker("load", "-i", archive); err != nil {
		return f, err
	}
	build := func(extra ...string) (time.Duration, error) {
		// A local export: the figures are the RUNs', not the image store's.
		out := filepath.Join(d.Dir, "bench-out")
		_ = os.RemoveAll(out)
		args := append(append([]string{"buildx", "build", "-q", "--no-cache", "--output", "type=local,dest=" + out}, extra...), ctx)
		return d.TimeDocker(args...)
	}
	var bridge, none []time.Duration
	for i := 0; i <= runs; i++ {
		tb, err := build()
		if err != nil {
			return f, err
		}
		tn, err := build("--network", "none")
		if err != nil {
			return f, err
		}
		if i > 0 { // the first round warms the cache of the base image and the frontend
			bridge, none = append(bridge, tb), append(none, tn)
		}
	}
	return figures{benchutil.Median(bridge), benchutil.Median(none)}, nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
