// Command startup measures cold start (exec to the first 200 on /_ping) and idle RSS of berthd and of
// Debian's dockerd, in the same run, each on fresh temp dirs with its own containerd.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	runs := flag.Int("runs", 5, "measured runs per daemon (after one warm-up)")
	flag.Parse()

	var bStarts, dStarts []time.Duration
	var bRSS, dRSS, bCtd, dCtd int64
	for i := 0; i <= *runs; i++ {
		b, err := benchutil.StartBerthd(*bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		time.Sleep(2 * time.Second)
		if i > 0 {
			bStarts = append(bStarts, b.Started)
			bRSS, bCtd = benchutil.RSS(b.Pid()), benchutil.ChildrenRSS(b.Pid(), "containerd")
		}
		b.Cleanup()

		d, err := benchutil.StartDockerd()
		if err != nil {
			fmt.Fprintln(os.Stderr, "dockerd:", err)
			continue
		}
		time.Sleep(2 * time.Second)
		if i > 0 {
			dStarts = append(dStarts, d.Started)
			dRSS, dCtd = benchutil.RSS(d.Pid()), benchutil.ChildrenRSS(d.Pid(), "containerd")
		}
		d.Cleanup()
	}
	benchutil.Header(fmt.Sprintf("startup: median of %d cold starts, RSS 2 s after start", *runs))
	benchutil.Row("start: exec to first /_ping 200", benchutil.Median(bStarts).Seconds(), benchutil.Median(dStarts).Seconds(), "s")
	benchutil.Row("idle RSS, daemon process", float64(bRSS)/(1<<20), float64(dRSS)/(1<<20), "MiB")
	benchutil.Row("idle RSS, its containerd", float64(bCtd)/(1<<20), float64(dCtd)/(1<<20), "MiB")
}
