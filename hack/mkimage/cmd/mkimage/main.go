// Command mkimage writes test images offline (see package hack/mkimage):
//
//	mkimage -kind rootfs -o busybox-rootfs.tar          # docker import input
//	mkimage -kind save -o busybox.tar -tag busybox:latest # 3-layer docker save archive
//	mkimage -kind bench -o big.tar -size 200 -layers 5   # busybox + random layers, size in MB
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/berthd/berthd/hack/mkimage"
)

func main() {
	kind := flag.String("kind", "save", "rootfs, save or bench")
	out := flag.String("o", "-", "output file (- for stdout)")
	tag := flag.String("tag", "busybox:latest", "repository tag recorded in save/bench archives")
	size := flag.Int64("size", 200, "bench: total size in MB")
	layers := flag.Int("layers", 5, "bench: number of layers")
	flag.Parse()

	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var err error
	switch *kind {
	case "rootfs":
		err = mkimage.BusyboxRootFS(bw)
	case "save":
		var img mkimage.Image
		if img, err = mkimage.BusyboxImage(*tag); err == nil {
			err = mkimage.WriteSave(bw, []mkimage.Image{img})
		}
	case "bench":
		var img mkimage.Image
		if img, err = mkimage.BenchImage(*tag, *size<<20, *layers); err == nil {
			err = mkimage.WriteSave(bw, []mkimage.Image{img})
		}
	default:
		err = fmt.Errorf("unknown kind %q", *kind)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}
