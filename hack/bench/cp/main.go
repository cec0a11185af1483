// Command cp measures docker cp against a running container through the moby Go client
// (CopyToContainer / CopyFromContainer, the API calls the CLI makes): a one-file tar in, a tar of
// -files files in, one file out and that directory out, on berthd and on Debian's dockerd in the same run.
// Each daemon runs on fresh temp dirs; figures are medians of -runs runs. The container runs a busy
// shell loop meanwhile, so that a copy pays what freezing a working container costs where it freezes.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
	"github.com/berthd/berthd/hack/mkimage"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

func main() {
	bin := flag.String("berthd", "bin/berthd", "berthd binary")
	skipDockerd := flag.Bool("no-dockerd", false, "measure berthd only")
	runs := flag.Int("runs", 20, "runs per figure")
	files := flag.Int("files", 200, "files in the directory copied in and out")
	flag.Parse()

	img, err := mkimage.BusyboxImage("busybox:latest")
	check(err)
	var archive bytes.Buffer
	check(mkimage.WriteSave(&archive, []mkimage.Image{img}))
	one := tarOf(1, "one")
	many := tarOf(*files, "many")

	type res struct{ in1, inN, out1, outN time.Duration }
	measure := func(d *benchutil.Daemon) res {
		ctx := context.Background()
		docker := func(stdin io.Reader, args ...string) string {
			cmd := exec.Command("docker", args...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
			cmd.Stdin = stdin
			out, err := cmd.CombinedOutput()
			if err != nil {
				check(fmt.Errorf("docker %v: %v: %s", args, err, out))
			}
			return strings.TrimSpace(string(out))
		}
		docker(bytes.NewReader(archive.Bytes()), "load")
		id := docker(nil, "run", "-d", "--network", "none", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; done")
		c, err := client.NewClientWithOpts(client.WithHost(d.Host()), client.WithAPIVersionNegotiation())
		check(err)
		defer c.Close()
		check(c.CopyToContainer(ctx, id, "/tmp", bytes.NewReader(many), container.CopyToContainerOptions{}))

		median := func(fn func()) time.Duration {
			fn() // warm
			var ds []time.Duration
			for i := 0; i < *runs; i++ {
				t := time.Now()
				fn()
				ds = append(ds, time.Since(t))
			}
			return benchutil.Median(ds)
		}
		in := func(b []byte) func() {
			return func() {
				check(c.CopyToContainer(ctx, id, "/tmp", bytes.NewReader(b), container.CopyToContainerOptions{}))
			}
		}
		out := func(p string) func() {
			return func() {
				rc, _, err := c.CopyFromContainer(ctx, id, p)
				check(err)
				_, err = io.Copy(io.Discard, rc)
				check(err)
				rc.Close()
			}
		}
		var r res
		r.in1 = median(in(one))
		r.inN = median(in(many))
		r.out1 = median(out("/tmp/one/f0"))
		r.outN = median(out("/tmp/many"))
		docker(nil, "rm", "-f", id)
		return r
	}

	b, err := benchutil.StartBerthd(*bin)
	check(err)
	rb := measure(b)
	b.Stop()
	b.Cleanup()

	var rd res
	if !*skipDockerd {
		d, err := benchutil.StartDockerd()
		check(err)
		rd = measure(d)
		d.Stop()
		d.Cleanup()
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	benchutil.Header("docker cp, running container (moby client)")
	benchutil.Row("cp in: one file", ms(rb.in1), ms(rd.in1), "ms")
	benchutil.Row(fmt.Sprintf("cp in: directory of %d files", *files), ms(rb.inN), ms(rd.inN), "ms")
	benchutil.Row("cp out: one file", ms(rb.out1), ms(rd.out1), "ms")
	benchutil.Row(fmt.Sprintf("cp out: directory of %d files", *files), ms(rb.outN), ms(rd.outN), "ms")
}

// tarOf is a tar of a directory dir holding n small files.
func tarOf(n int, dir string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	check(tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now()}))
	body := bytes.Repeat([]byte("x"), 1024)
	for i := 0; i < n; i++ {
		check(tw.WriteHeader(&tar.Header{Name: dir + "/f" + strconv.Itoa(i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Now()}))
		_, err := tw.Write(body)
		check(err)
	}
	check(tw.Close())
	return buf.Bytes()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "cp bench:", err)
		os.Exit(1)
	}
}
