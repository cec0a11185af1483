// Command buildkit measures BuildKit builds through buildx's docker driver on berthd beside Debian's
// dockerd (its embedded BuildKit), in the same run, each daemon fresh in a network namespace of its own
// with busybox loaded: the 20-step Dockerfile of the classic benchmark (RUNs, metadata, COPYs of a 50 MB
// tree) and a build whose RUN fills a cache mount, each cold (--no-cache) and warm (every step cached).
// Each figure is the median of -runs runs; the time includes buildx's --load into the daemon's store.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
	"github.com/berthd/berthd/hack/testenv/buildx"
)

// cacheDockerfile writes 2,000 small files into a cache mount (kept by BuildKit between builds) and
// sums what the mount holds into the image.
const cacheDockerfile = `FROM busybox
RUN --mount=type=cache,target=/c i=0; while [ $i -lt 2000 ]; do [ -f /c/f$i ] || echo $i > /c/f$i; i=$((i+1)); done; cat /c/* | wc -l > /count
`

type figures struct{ cold, warm, cacheCold, cacheWarm time.Duration }

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	sizeMB := flag.Int("size", 50, "size of the copied tree in MB")
	runs := flag.Int("runs", 3, "runs per figure")
	flag.Parse()

	work, err := os.MkdirTemp("/tmp", "bench-bk")
	check(err)
	defer os.RemoveAll(work)
	cfg := filepath.Join(work, "cli")
	check(buildx.ConfigDir(cfg))
	ctx := filepath.Join(work, "ctx")
	check(benchutil.WriteBuildContext(ctx, *sizeMB))
	cacheCtx := filepath.Join(work, "cachectx")
	check(os.MkdirAll(cacheCtx, 0o755))
	check(os.WriteFile(filepath.Join(cacheCtx, "Dockerfile"), []byte(cacheDockerfile), 0o644))
	archive, err := benchutil.BusyboxArchiveFile(work)
	check(err)
	fb, fd, err := benchutil.OnBoth(*bin, *skipDockerd, func(d *benchutil.Daemon) (figures, error) {
		return measure(d, cfg, archive, ctx, cacheCtx, *runs)
	})
	check(err)
	fmt.Printf("BuildKit build through buildx (docker driver, --load), 20 steps, %d MB copied; cache-mount build (median of %d)\n", *sizeMB, *runs)
	tab := benchutil.Table{Width: 26}
	tab.Header()
	row := tab.Row
	row("20 steps, cold", fb.cold, fd.cold)
	row("20 steps, warm", fb.warm, fd.warm)
	row("cache mount, --no-cache", fb.cacheCold, fd.cacheCold)
	row("cache mount, warm", fb.cacheWarm, fd.cacheWarm)
}

func measure(d *benchutil.Daemon, cfg, archive, ctx, cacheCtx string, runs int) (figures, error) {
	var f figures
	if _, err := d.TimeDocker("load", "-i", archive); err != nil {
		return f, err
	}
	build := func(dir string, nocache bool) (time.Duration, error) {
		args := []string{"buildx", "build", "--load", "-q", "-t", "bench", dir}
		if nocache {
			args = append(args[:2], append([]string{"--no-cache"}, args[2:]...)...)
		}
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+cfg, "DOCKER_CONTEXT=")
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: docker %v: %v: %s", d.Name, args, err, out)
		}
		return time.Since(t0), nil
	}
	var cold, warm, cacheCold, cacheWarm []time.Duration
	for i := 0; i < runs; i++ {
		for _, m := range []struct {
			dir     string
			nocache bool
			into    *[]time.Duration
		}{{ctx, i > 0, &cold}, {ctx, false, &warm}, {cacheCtx, i > 0, &cacheCold}, {cacheCtx, false, &cacheWarm}} {
			t, err := build(m.dir, m.nocache)
			if err != nil {
				return f, err
			}
			*m.into = append(*m.into, t)
		}
	}
	return figures{benchutil.Median(cold), benchutil.Median(warm), benchutil.Median(cacheCold), benchutil.Median(cacheWarm)}, nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
