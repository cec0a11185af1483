// Command plugins measures volumes served by a legacy plugin (hack/plugins/volplugin) on berthd beside
// Debian's dockerd, in the same run: creates through the plugin driver (8 clients), GET /volumes over
// those volumes, GET /volumes with one dead plugin (a socket file nobody listens on) in the plugin dir,
// and creating a volume on a driver that does not exist.
//
// dockerd runs in a private mount namespace with an empty tmpfs over /run/docker/plugins (benchutil, as
// ref-dockerd): its plugin sockets are created inside that namespace by starting the plugin processes
// with nsenter(1), so dockerd finds real sockets by its own rules. berthd gets its private
// --plugins-socket-dir instead.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

const (
	workers = 8
	nVols   = 200
)

type results struct {
	createOps            float64
	list, listDead       time.Duration
	unknownDriver        time.Duration
	deadDriverCreate     time.Duration
	listDeadFirst        time.Duration
	listDeadLater        time.Duration
	unknownDriverMessage string
}

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	flag.Parse()

	work, err := os.MkdirTemp("/tmp", "bplug")
	check(err)
	defer os.RemoveAll(work)
	plugin := filepath.Join(work, "volplugin")
	out, err := exec.Command("go", "build", "-o", plugin, "./hack/plugins/volplugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building volplugin: %v\n%s", err, out)
		os.Exit(1)
	}

	b, err := run(plugin, work, func() (*benchutil.Daemon, string, []string, error) {
		d, err := benchutil.StartBerthd(*bin)
		if err != nil {
			return nil, "", nil, err
		}
		return d, filepath.Join(d.Dir, "plugins"), nil, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
	var d results
	if !*skipDockerd {
		d, err = run(plugin, work, func() (*benchutil.Daemon, string, []string, error) {
			dm, err := benchutil.StartDockerd()
			if err != nil {
				return nil, "", nil, err
			}
			return dm, "/run/docker/plugins", []string{"nsenter", "-t", strconv.Itoa(dm.Pid()), "-m", "--"}, nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "dockerd:", err)
		}
	}
	benchutil.Header(fmt.Sprintf("legacy volume plugin (volplugin), %d volumes", nVols))
	benchutil.Row(fmt.Sprintf("create -d volplugin x%d, 8 clients (op/s)", nVols), b.createOps, d.createOps, "op/s")
	benchutil.Row("GET /volumes (median of 5)", ms(b.list), ms(d.list), "ms")
	benchutil.Row("GET /volumes, dead plugin present: first", ms(b.listDeadFirst), ms(d.listDeadFirst), "ms")
	benchutil.Row("GET /volumes, dead plugin present: next", ms(b.listDead), ms(d.listDead), "ms")
	benchutil.Row("create -d dead (plugin not answering)", ms(b.deadDriverCreate), ms(d.deadDriverCreate), "ms")
	benchutil.Row("GET /volumes, dead plugin present: after that", ms(b.listDeadLater), ms(d.listDeadLater), "ms")
	benchutil.Row("create -d nosuch (unknown driver)", ms(b.unknownDriver), ms(d.unknownDriver), "ms")
	fmt.Printf("unknown driver error: berthd %q / dockerd %q\n", b.unknownDriverMessage, d.unknownDriverMessage)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// startPlugin starts volplugin on socketDir/name.sock (inside the daemon's mount namespace when prefix
// is nsenter) and waits until the socket is there.
func startPlugin(prefix []string, plugin, socketDir, name, root string) (*exec.Cmd, error) {
	sock := filepath.Join(socketDir, name+".sock")
	args := append(append([]string(nil), prefix...), plugin, "-socket", sock, "-root", root)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	check := append(append([]string(nil), prefix...), "test", "-S", sock)
	for i := 0; i < 500; i++ {
		if exec.Command(check[0], check[1:]...).Run() == nil {
			time.Sleep(50 * time.Millisecond)
			return cmd, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("plugin %s did not start", name)
}

func kill(cmd *exec.Cmd) {
	if cmd != nil && cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}
}

func run(plugin, work string, start func() (*benchutil.Daemon, string, []string, error)) (results, error) {
	var r results
	dm, socketDir, prefix, err := start()
	if err != nil {
		return r, err
	}
	defer dm.Cleanup()
	root := filepath.Join(work, dm.Name+"-vols")
	vp, err := startPlugin(prefix, plugin, socketDir, "volplugin", root)
	if err != nil {
		return r, err
	}
	defer kill(vp)
	hc := dm.HTTP()

	post := func(body any) (int, string, error) {
		b, _ := json.Marshal(body)
		resp, err := hc.Post("http://d/v1.41/volumes/create", "application/json", bytes.NewReader(b))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg), nil
	}
	list := func() (time.Duration, error) {
		t0 := time.Now()
		resp, err := hc.Get("http://d/v1.41/volumes")
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("GET /volumes: %d", resp.StatusCode)
		}
		return time.Since(t0), nil
	}

	// Warm up: the first create activates the plugin.
	if code, msg, err := post(map[string]any{"Name": "warm", "Driver": "volplugin"}); err != nil || code != 201 {
		return r, fmt.Errorf("create: %d %s %v", code, msg, err)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > nVols {
					return
				}
				if code, _, err := post(map[string]any{"Name": fmt.Sprintf("pv%04d", i), "Driver": "volplugin"}); err != nil || code != 201 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r.createOps = nVols / time.Since(t0).Seconds()
	if failed.Load() > 0 {
		return r, fmt.Errorf("%d creates failed", failed.Load())
	}
	var ds []time.Duration
	for i := 0; i < 5; i++ {
		d, err := list()
		if err != nil {
			return r, err
		}
		ds = append(ds, d)
	}
	r.list = benchutil.Median(ds)

	// A crashed plugin: SIGKILL leaves its socket file, which now refuses connections.
	dead, err := startPlugin(prefix, plugin, socketDir, "dead", filepath.Join(work, dm.Name+"-dead"))
	if err != nil {
		return r, err
	}
	kill(dead)
	if r.listDeadFirst, err = list(); err != nil {
		return r, err
	}
	if r.listDead, err = list(); err != nil {
		return r, err
	}
	t0 = time.Now()
	post(map[string]any{"Name": "x1", "Driver": "dead"})
	r.deadDriverCreate = time.Since(t0)
	if r.listDeadLater, err = list(); err != nil {
		return r, err
	}

	t0 = time.Now()
	_, msg, _ := post(map[string]any{"Name": "x2", "Driver": "nosuch"})
	r.unknownDriver = time.Since(t0)
	var e struct{ Message string }
	json.Unmarshal([]byte(msg), &e)
	r.unknownDriverMessage = e.Message
	return r, nil
}
