// Command images measures image transfer on berthd beside Debian's dockerd, in the same run, each on fresh
// temp dirs: `docker load` and `docker save` of a 200 MB, 5-layer image built offline by hack/mkimage,
// and `docker pull` of the same image from a local docker-registry (pushed once, pulled by a fresh daemon
// of each kind). Each figure is the median of -runs runs. With -sorted, also the load of the image as
// berthd saves it: exporters sort archive entries by name, so its layers come out of order, unlike
// hack/mkimage's bottom-first archive.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
	"github.com/berthd/berthd/hack/mkimage"
)

type results struct{ load, save, pull time.Duration }

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	sizeMB := flag.Int64("size", 200, "image size in MB")
	layers := flag.Int("layers", 5, "number of layers")
	runs := flag.Int("runs", 3, "runs per figure")
	sorted := flag.Bool("sorted", true, "also load the image as `docker save` writes it (entries sorted by name, so layers out of order)")
	flag.Parse()

	work, err := os.MkdirTemp("/tmp", "bench-img")
	check(err)
	defer os.RemoveAll(work)
	archive := filepath.Join(work, "bench.tar")
	check(writeArchive(archive, *sizeMB, *layers))
	reg, stopReg, err := startRegistry(work)
	check(err)
	defer stopReg()
	ref := reg + "/bench:latest"

	// Seed the registry once, from berthd.
	seed, err := benchutil.StartBerthd(*bin)
	check(err)
	_, err = seed.TimeDocker("load", "-i", archive)
	if err == nil {
		_, err = seed.TimeDocker("tag", "bench:latest", ref)
	}
	if err == nil {
		_, err = seed.TimeDocker("push", ref)
	}
	var saved string
	if err == nil && *sorted {
		saved = filepath.Join(work, "saved.tar")
		_, err = seed.TimeDocker("save", "-o", saved, "bench:latest")
	}
	seed.Cleanup()
	check(err)

	b, err := measure(func() (*benchutil.Daemon, error) { return benchutil.StartBerthd(*bin) }, archive, ref, *runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
	var d results
	if !*skipDockerd {
		d, err = measure(func() (*benchutil.Daemon, error) { return benchutil.StartDockerd() }, archive, ref, *runs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dockerd:", err)
		}
	}
	var bs, ds time.Duration
	if saved != "" {
		bs, err = measureLoad(func() (*benchutil.Daemon, error) { return benchutil.StartBerthd(*bin) }, saved, *runs)
		check(err)
		if !*skipDockerd {
			ds, err = measureLoad(func() (*benchutil.Daemon, error) { return benchutil.StartDockerd() }, saved, *runs)
			check(err)
		}
	}
	benchutil.Header(fmt.Sprintf("images: %d MB, %d layers (median of %d)", *sizeMB, *layers, *runs))
	benchutil.Row("docker load (s, lower is better)", b.load.Seconds(), d.load.Seconds(), "s")
	benchutil.Row("docker save (s)", b.save.Seconds(), d.save.Seconds(), "s")
	benchutil.Row("docker pull from local registry (s)", b.pull.Seconds(), d.pull.Seconds(), "s")
	if saved != "" {
		benchutil.Row("docker load of a saved archive, sorted (s)", bs.Seconds(), ds.Seconds(), "s")
	}
}

// measureLoad is the median time to load archive into a fresh daemon.
func measureLoad(start func() (*benchutil.Daemon, error), archive string, runs int) (time.Duration, error) {
	var loads []time.Duration
	for i := 0; i < runs; i++ {
		d, err := start()
		if err != nil {
			return 0, err
		}
		t, err := d.TimeDocker("load", "-i", archive)
		d.Cleanup()
		if err != nil {
			return 0, err
		}
		loads = append(loads, t)
	}
	return benchutil.Median(loads), nil
}

func measure(start func() (*benchutil.Daemon, error), archive, ref string, runs int) (results, error) {
	var loads, saves, pulls []time.Duration
	for i := 0; i < runs; i++ {
		d, err := start()
		if err != nil {
			return results{}, err
		}
		t, err := d.TimeDocker("load", "-i", archive)
		if err != nil {
			d.Cleanup()
			return results{}, err
		}
		loads = append(loads, t)
		out := filepath.Join(d.Dir, "out.tar")
		t, err = d.TimeDocker("save", "-o", out, "bench:latest")
		os.Remove(out)
		d.Cleanup()
		if err != nil {
			return results{}, err
		}
		saves = append(saves, t)

		d, err = start()
		if err != nil {
			return results{}, err
		}
		t, err = d.TimeDocker("pull", "-q", ref)
		d.Cleanup()
		if err != nil {
			return results{}, err
		}
		pulls = append(pulls, t)
	}
	return results{benchutil.Median(loads), benchutil.Median(saves), benchutil.Median(pulls)}, nil
}

func writeArchive(path string, sizeMB int64, layers int) error {
	img, err := mkimage.BenchImage("bench:latest", sizeMB<<20, layers)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := mkimage.WriteSave(w, []mkimage.Image{img}); err != nil {
		return err
	}
	return w.Flush()
}

func startRegistry(dir string) (string, func(), error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return "", nil, fmt.Errorf("docker-registry not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "registry"), addr)
	cfgPath := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("registry did not start")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}
