// Command security measures what confinement and authorization cost: `docker run --rm --network none
// busybox true` under the default seccomp profile and with seccomp=unconfined, and the latency of an API
// request (GET /_ping) with no authorization plugin and with one allow-all plugin
// (hack/plugins/authzplugin), on berthd and on Debian's dockerd. Latency figures are medians.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

type result struct{ confined, unconfined, api, apiAuthz time.Duration }

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	runs := flag.Int("runs", 10, "docker runs per figure")
	reqs := flag.Int("requests", 500, "API requests per figure")
	flag.Parse()

	archive, err := benchutil.BusyboxArchive()
	check(err)
	pluginBin := filepath.Join(os.TempDir(), fmt.Sprintf("authzplugin-bench-%d", os.Getpid()))
	out, err := exec.Command("go", "build", "-o", pluginBin, "github.com/berthd/berthd/hack/plugins/authzplugin").CombinedOutput()
	if err != nil {
		check(fmt.Errorf("build authzplugin: %v: %s", err, out))
	}
	defer os.Remove(pluginBin)

	runFigures := func(d *benchutil.Daemon, r *result) {
		_, err := d.Docker(archive, "load")
		check(err)
		timed := func(args ...string) time.Duration {
			return benchutil.Timed(*runs, func() {
				_, err := d.Docker(nil, args...)
				check(err)
			})
		}
		r.confined = timed("run", "--rm", "--network", "none", "busybox", "true")
		r.unconfined = timed("run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "busybox", "true")
		r.api = apiLatency(d, *reqs)
	}
	withPlugin := func(sock string) *exec.Cmd {
		cmd := exec.Command(pluginBin, "-socket", sock)
		check(cmd.Start())
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return cmd
	}

	var rb, rd result
	b, err := benchutil.StartBerthd(*bin)
	check(err)
	runFigures(b, &rb)
	dir := b.Dir
	b.Stop()
	plug := withPlugin(filepath.Join(dir, "plugins", "authz.sock"))
	b, err = benchutil.StartBerthdAt(*bin, dir, "--authorization-plugin", "authz")
	check(err)
	rb.apiAuthz = apiLatency(b, *reqs)
	b.Cleanup()
	plug.Process.Kill()
	plug.Wait()

	if !*skipDockerd {
		d, err := benchutil.StartDockerd()
		check(err)
		runFigures(d, &rd)
		dir := d.Dir
		d.Stop()
		sock := filepath.Join(dir, "authz.sock")
		plug := withPlugin(sock)
		os.Setenv("BENCH_PLUGIN_SOCKS", sock)
		d, err = benchutil.StartDockerdAt(dir, "--authorization-plugin", "authz")
		os.Unsetenv("BENCH_PLUGIN_SOCKS")
		check(err)
		rd.apiAuthz = apiLatency(d, *reqs)
		d.Cleanup()
		plug.Process.Kill()
		plug.Wait()
	}

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	benchutil.Header("security")
	benchutil.Row("docker run --rm busybox true (default seccomp)", ms(rb.confined), ms(rd.confined), "ms")
	benchutil.Row("docker run --rm busybox true (unconfined)", ms(rb.unconfined), ms(rd.unconfined), "ms")
	benchutil.Row("GET /_ping, no authz plugin", us(rb.api), us(rd.api), "us")
	benchutil.Row("GET /_ping, one allow-all authz plugin", us(rb.apiAuthz), us(rd.apiAuthz), "us")
}

// apiLatency is the median of n sequential GET /_ping on one kept-alive connection.
func apiLatency(d *benchutil.Daemon, n int) time.Duration {
	hc := d.HTTP()
	var ds []time.Duration
	for i := 0; i <= n; i++ {
		t := time.Now()
		resp, err := hc.Get("http://d/_ping")
		check(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			check(fmt.Errorf("GET /_ping: %s", resp.Status))
		}
		if i > 0 {
			ds = append(ds, time.Since(t))
		}
	}
	return benchutil.Median(ds)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "security bench:", err)
		os.Exit(1)
	}
}
