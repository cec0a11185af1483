// Command containers measures the container start-up path: `docker run --rm --network none busybox true`
// on berthd, on Debian's dockerd, and the containerd floor (`ctr run --rm` of the same unpacked image on
// berthd's containerd); 50 such runs in parallel; and `docker ps -a` with 500 containers. Each daemon runs
// on fresh temp dirs; latency figures are medians of -runs runs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	runs := flag.Int("runs", 10, "runs per latency figure")
	parallel := flag.Int("parallel", 50, "containers started at once")
	many := flag.Int("ps", 500, "containers listed by docker ps")
	flag.Parse()

	archive, err := benchutil.BusyboxArchive()
	check(err)

	type res struct{ run, par, ps, floor time.Duration }
	measure := func(d *benchutil.Daemon, floor bool) res {
		docker := func(args ...string) error {
			_, err := d.Docker(nil, args...)
			return err
		}
		_, err := d.Docker(archive, "load")
		check(err)
		var r res
		r.run = benchutil.Timed(*runs, func() { check(docker("run", "--rm", "--network", "none", "busybox", "true")) })

		t := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, *parallel)
		for i := 0; i < *parallel; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- docker("run", "--rm", "--network", "none", "busybox", "true")
			}()
		}
		wg.Wait()
		r.par = time.Since(t)
		close(errs)
		for err := range errs {
			check(err)
		}

		sem := make(chan struct{}, 8)
		for i := 0; i < *many; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				check(docker("create", "--network", "none", "busybox", "true"))
			}()
		}
		wg.Wait()
		var ds []time.Duration
		for i := 0; i < 5; i++ {
			t := time.Now()
			check(docker("ps", "-a"))
			ds = append(ds, time.Since(t))
		}
		r.ps = benchutil.Median(ds)

		if floor {
			sock := filepath.Join(d.Dir, "exec", "containerd", "containerd.sock")
			ds = nil
			for i := 0; i <= *runs; i++ {
				t := time.Now()
				out, err := exec.Command("ctr", "-a", sock, "-n", "berth", "run", "--rm", "--snapshotter", "overlayfs",
					"docker.io/library/busybox:latest", fmt.Sprintf("floor%d", i), "true").CombinedOutput()
				if err != nil {
					check(fmt.Errorf("ctr run: %v: %s", err, out))
				}
				if i > 0 {
					ds = append(ds, time.Since(t))
				}
			}
			r.floor = benchutil.Median(ds)
		}
		return r
	}

	b, err := benchutil.StartBerthd(*bin)
	check(err)
	rb := measure(b, true)
	b.Stop()
	b.Cleanup()

	var rd res
	if !*skipDockerd {
		d, err := benchutil.StartDockerd()
		check(err)
		rd = measure(d, false)
		d.Stop()
		d.Cleanup()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	benchutil.Header("containers")
	benchutil.Row("docker run --rm --network none busybox true", ms(rb.run), ms(rd.run), "ms")
	benchutil.Row(fmt.Sprintf("%d x docker run in parallel (wall)", *parallel), ms(rb.par), ms(rd.par), "ms")
	benchutil.Row(fmt.Sprintf("docker ps -a with %d containers", *many), ms(rb.ps), ms(rd.ps), "ms")
	fmt.Printf("%-48s %12.3f %-5s\n", "containerd floor: ctr run --rm (berthd's containerd)", ms(rb.floor), "ms")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "containers bench:", err)
		os.Exit(1)
	}
}
