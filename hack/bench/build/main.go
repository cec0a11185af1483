// Command build measures classic Dockerfile builds (DOCKER_BUILDKIT=0) on berthd beside Debian's dockerd,
// in the same run, each daemon fresh with busybox loaded: a 20-step Dockerfile (RUNs, metadata, COPYs of
// a 50 MB tree) built cold (no cache), warm (every step a cache hit) and with one small COPY source
// changed (a miss from that step on). Each figure is the median of -runs runs; cold runs after the first
// use --no-cache.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

const dockerfile = `FROM busybox
ENV APP=/app
RUN echo one > /r1
COPY tree/a /t/a
RUN ls -R /t | wc -l > /c1
WORKDIR /app
COPY tree/b /t/b
RUN echo two > /r2
LABEL bench=build
COPY small.txt /s.txt
RUN cat /s.txt > /r3
ENV X=1
COPY tree/c /t/c
RUN du -s /t > /du
EXPOSE 8080
USER root
RUN echo three > /r4
VOLUME /data
CMD ["sh"]
RUN echo done > /r5
`

type figures struct{ cold, warm, changed time.Duration }

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
	check(writeContext(ctx, *sizeMB))
	save, err := benchutil.BusyboxArchive()
	check(err)
	archive := filepath.Join(work, "busybox.tar")
	check(os.WriteFile(archive, save, 0o644))

	b, err := benchutil.StartBerthd(*bin)
	check(err)
	fb, err := measure(b, archive, ctx, *runs)
	b.Cleanup()
	check(err)
	var fd figures
	if !*skipDockerd {
		d, err := benchutil.StartDockerd()
		check(err)
		fd, err = measure(d, archive, ctx, *runs)
		d.Cleanup()
		check(err)
	}
	floor, err := measureFloor(work, ctx, *runs)
	check(err)
	fmt.Printf("classic build, 20 steps, %d MB copied (median of %d)\n", *sizeMB, *runs)
	fmt.Printf("%-22s %12s %12s %8s\n", "", "berthd", "dockerd", "ratio")
	row := func(name string, a, b time.Duration) {
		ratio := "-"
		if b > 0 {
			ratio = fmt.Sprintf("%.2f", float64(a)/float64(b))
		}
		fmt.Printf("%-22s %12s %12s %8s\n", name, a.Round(time.Millisecond), b.Round(time.Millisecond), ratio)
	}
	row("cold", fb.cold, fd.cold)
	row("warm (all cache)", fb.warm, fd.warm)
	row("one COPY changed", fb.changed, fd.changed)
	fmt.Printf("%-22s %12s  (docker build against a server that discards the context: no daemon is faster)\n", "warm floor (CLI+send)", floor.Round(time.Millisecond))
}

func measure(d *benchutil.Daemon, archive, ctx string, runs int) (figures, error) {
	var f figures
	if _, err := d.TimeDocker("load", "-i", archive); err != nil {
		return f, err
	}
	var cold, warm, changed []time.Duration
	for i := 0; i < runs; i++ {
		args := []string{"build", "-q", "-t", "bench", ctx}
		if i > 0 {
			args = []string{"build", "-q", "--no-cache", "-t", "bench", ctx}
		}
		t, err := d.TimeDocker(args...)
		if err != nil {
			return f, err
		}
		cold = append(cold, t)
		if t, err = d.TimeDocker("build", "-q", "-t", "bench", ctx); err != nil {
			return f, err
		}
		warm = append(warm, t)
		if err := os.WriteFile(filepath.Join(ctx, "small.txt"), []byte(fmt.Sprintf("changed %d %d\n", i, time.Now().UnixNano())), 0o644); err != nil {
			return f, err
		}
		if t, err = d.TimeDocker("build", "-q", "-t", "bench", ctx); err != nil {
			return f, err
		}
		changed = append(changed, t)
	}
	return figures{benchutil.Median(cold), benchutil.Median(warm), benchutil.Median(changed)}, nil
}

// writeContext writes the Dockerfile, small.txt and a tree of sizeMB in three parts of 1 MB files.
func writeContext(dir string, sizeMB int) error {
	r := rand.New(rand.NewSource(1))
	buf := make([]byte, 1<<20)
	for i := 0; i < sizeMB; i++ {
		part := []string{"a", "b", "c"}[i%3]
		p := filepath.Join(dir, "tree", part, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		r.Read(buf)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "small.txt"), []byte("v0\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
