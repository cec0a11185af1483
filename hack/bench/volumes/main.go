// Command volumes measures the volume API of berthd beside Debian's dockerd, in the same run, each on fresh
// temp dirs: 1,000 creates from 8 concurrent clients, GET /volumes at 1,000 and 5,000 volumes, 1,000
// inspects, 1,000 removes, and cold start (exec to the first /_ping 200) over 2,000 volumes.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

const workers = 8

type results struct {
	createOps, inspectOps, removeOps float64
	// CPU used per create by the daemon and by this benchmark's clients: on a small machine both share the
	// same cores, which bounds what any daemon can reach here.
	createCPU, clientCPU      time.Duration
	list1k, list5k, coldStart time.Duration
}

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	flag.Parse()

	b, err := run("berthd", func(dir string) (*benchutil.Daemon, error) {
		if dir == "" {
			return benchutil.StartBerthd(*bin)
		}
		return benchutil.StartBerthdAt(*bin, dir)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
	var d results
	if !*skipDockerd {
		d, err = run("dockerd", func(dir string) (*benchutil.Daemon, error) {
			if dir == "" {
				return benchutil.StartDockerd()
			}
			return benchutil.StartDockerdAt(dir)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "dockerd:", err)
		}
	}
	benchutil.Header("volumes: 8 concurrent clients where noted")
	benchutil.Row("create x1000, 8 clients (ops/s, higher is better)", b.createOps, d.createOps, "op/s")
	benchutil.Row("  daemon CPU per create", us(b.createCPU), us(d.createCPU), "us")
	benchutil.Row("  benchmark client CPU per create", us(b.clientCPU), us(d.clientCPU), "us")
	benchutil.Row("GET /volumes at 1,000 volumes", ms(b.list1k), ms(d.list1k), "ms")
	benchutil.Row("GET /volumes at 5,000 volumes", ms(b.list5k), ms(d.list5k), "ms")
	benchutil.Row("inspect x1000, 8 clients (ops/s)", b.inspectOps, d.inspectOps, "op/s")
	benchutil.Row("remove x1000, 8 clients (ops/s)", b.removeOps, d.removeOps, "op/s")
	benchutil.Row("cold start to /_ping with 2,000 volumes", ms(b.coldStart), ms(d.coldStart), "ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func run(name string, start func(dir string) (*benchutil.Daemon, error)) (results, error) {
	var r results
	dm, err := start("")
	if err != nil {
		return r, err
	}
	defer func() { dm.Cleanup() }()
	hc := dm.HTTP()
	names := func(from, to int) []string {
		out := make([]string, 0, to-from)
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("bench%05d", i))
		}
		return out
	}
	create := func(n string) error {
		body, _ := json.Marshal(map[string]any{"Name": n, "Driver": "local", "Labels": map[string]string{"bench": "1"}})
		return do(hc, "POST", "/v1.41/volumes/create", body, http.StatusCreated)
	}
	inspect := func(n string) error { return do(hc, "GET", "/v1.41/volumes/"+n, nil, http.StatusOK) }
	remove := func(n string) error { return do(hc, "DELETE", "/v1.41/volumes/"+n, nil, http.StatusNoContent) }
	list := func() (time.Duration, error) {
		var best time.Duration
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			if err := do(hc, "GET", "/v1.41/volumes", nil, http.StatusOK); err != nil {
				return 0, err
			}
			if d := time.Since(t0); best == 0 || d < best {
				best = d
			}
		}
		return best, nil
	}

	cpu0, self0 := benchutil.CPU(dm.Pid()), benchutil.SelfCPU()
	if r.createOps, err = parallel(names(0, 1000), create); err != nil {
		return r, err
	}
	r.createCPU = (benchutil.CPU(dm.Pid()) - cpu0) / 1000
	r.clientCPU = (benchutil.SelfCPU() - self0) / 1000
	if r.list1k, err = list(); err != nil {
		return r, err
	}
	if r.inspectOps, err = parallel(names(0, 1000), inspect); err != nil {
		return r, err
	}
	if _, err = parallel(names(1000, 2000), create); err != nil {
		return r, err
	}
	dir := dm.Dir
	dm.Stop()
	if dm, err = start(dir); err != nil {
		return r, err
	}
	hc = dm.HTTP()
	r.coldStart = dm.Started
	fmt.Fprintf(os.Stderr, "%s: cold start over 2,000 volumes %s\n", name, dm.Started)
	if _, err = parallel(names(2000, 5000), create); err != nil {
		return r, err
	}
	if r.list5k, err = list(); err != nil {
		return r, err
	}
	if r.removeOps, err = parallel(names(0, 1000), remove); err != nil {
		return r, err
	}
	return r, nil
}

// parallel runs op over items with 8 workers and returns operations per second.
func parallel(items []string, op func(string) error) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) {
					return
				}
				if err := op(items[i]); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(len(items)) / time.Since(t0).Seconds(), firstErr
}

func do(hc *http.Client, method, path string, body []byte, want int) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://d"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
