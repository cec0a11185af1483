// Package mkimage builds test images offline: a busybox root filesystem tar (from Debian's
// busybox-static, every applet linked into /bin) for `docker import`, and `docker save` archives with
// several layers (busybox, extra files, a whiteout) or with big random layers for benchmarks. Tests import
// it; cmd/mkimage writes the same files for scripts. Test support only: nothing in the daemon imports it.
package mkimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// Busybox is where Debian's busybox-static puts the binary.
const Busybox = "/bin/busybox"

// File is one entry of a layer.
type File struct {
	Name     string
	Mode     int64
	Type     byte // tar type flag; 0 means a regular file
	Body     []byte
	Linkname string
	Size     int64 // for generated content: Body is repeated random data of this size when Body is nil
	Seed     int64
}

var epoch = time.Unix(1700000000, 0).UTC()

// WriteLayer writes files as an uncompressed layer tar.
func WriteLayer(w io.Writer, files []File) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: epoch, Typeflag: f.Type, Linkname: f.Linkname, Format: tar.FormatPAX}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		var body io.Reader
		if hdr.Typeflag == tar.TypeReg {
			if f.Body != nil {
				hdr.Size = int64(len(f.Body))
				body = bytes.NewReader(f.Body)
			} else {
				hdr.Size = f.Size
				body = io.LimitReader(rand.New(rand.NewSource(f.Seed)), f.Size)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// BusyboxFiles is a minimal root filesystem: /bin/busybox with every applet as a hard link, the usual
// directories, and /etc/passwd and /etc/group with root and nobody.
func BusyboxFiles() ([]File, error) {
	bin, err := os.ReadFile(Busybox)
	if err != nil {
		return nil, fmt.Errorf("busybox-static is needed (apt-get install busybox-static): %w", err)
	}
	out, err := exec.Command(Busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	files := []File{}
	for _, d := range []string{"bin/", "dev/", "etc/", "home/", "proc/", "root/", "sys/", "tmp/", "usr/", "usr/bin/", "var/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		files = append(files, File{Name: d, Type: tar.TypeDir, Mode: mode})
	}
	files = append(files,
		File{Name: "bin/busybox", Mode: 0o755, Body: bin},
		File{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		File{Name: "etc/group", Body: []byte("root:x:0:\nnogroup:x:65534:\n")},
	)
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		files = append(files, File{Name: "bin/" + a, Type: tar.TypeLink, Linkname: "bin/busybox", Mode: 0o755})
	}
	return files, nil
}

// BusyboxRootFS writes the busybox root filesystem tar (`docker import` input).
func BusyboxRootFS(w io.Writer) error {
	files, err := BusyboxFiles()
	if err != nil {
		return err
	}
	return WriteLayer(w, files)
}

// Image describes a `docker save` image.
type Image struct {
	RepoTags []string
	Layers   [][]File
	Cmd      []string
	Env      []string
	Labels   map[string]string
	Created  time.Time
}

type layerBlob struct {
	name   string
	diffID string
	data   []byte
}

// WriteSave writes imgs as a `docker save` archive (manifest.json, <id>.json configs, <id>/layer.tar).
// Layers are built in memory, so keep benchmark layers to a few hundred MB in total.
func WriteSave(w io.Writer, imgs []Image) error {
	tw := tar.NewWriter(w)
	type mEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []mEntry
	written := map[string]bool{}
	for _, img := range imgs {
		var diffIDs []string
		var layerPaths []string
		var history []map[string]any
		created := img.Created
		if created.IsZero() {
			created = epoch
		}
		for i, files := range img.Layers {
			var buf bytes.Buffer
			if err := WriteLayer(&buf, files); err != nil {
				return err
			}
			sum := sha256.Sum256(buf.Bytes())
			hexsum := hex.EncodeToString(sum[:])
			diffIDs = append(diffIDs, "sha256:"+hexsum)
			p := hexsum + "/layer.tar"
			layerPaths = append(layerPaths, p)
			history = append(history, map[string]any{"created": created.Format(time.RFC3339Nano), "created_by": fmt.Sprintf("mkimage layer %d", i)})
			if !written[p] {
				written[p] = true
				if err := writeEntry(tw, hexsum+"/", nil, tar.TypeDir); err != nil {
					return err
				}
				if err := writeEntry(tw, p, buf.Bytes(), tar.TypeReg); err != nil {
					return err
				}
			}
		}
		cfg := map[string]any{
			"architecture": "amd64", "os": "linux", "created": created.Format(time.RFC3339Nano),
			"config":  map[string]any{"Cmd": img.Cmd, "Env": img.Env, "Labels": img.Labels},
			"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
			"history": history,
		}
		cb, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(cb)
		cname := hex.EncodeToString(sum[:]) + ".json"
		if !written[cname] {
			written[cname] = true
			if err := writeEntry(tw, cname, cb, tar.TypeReg); err != nil {
				return err
			}
		}
		manifest = append(manifest, mEntry{Config: cname, RepoTags: img.RepoTags, Layers: layerPaths})
	}
	mb, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := writeEntry(tw, "manifest.json", mb, tar.TypeReg); err != nil {
		return err
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, name string, body []byte, typ byte) error {
	mode := int64(0o644)
	if typ == tar.TypeDir {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: typ, ModTime: epoch}); err != nil {
		return err
	}
	_, err := tw.Write(body)
	return err
}

// BusyboxImage is a three-layer busybox image: the root filesystem, a layer adding /etc/hello and
// /etc/remove-me, and one deleting /etc/remove-me with a whiteout.
func BusyboxImage(tags ...string) (Image, error) {
	root, err := BusyboxFiles()
	if err != nil {
		return Image{}, err
	}
	return Image{
		RepoTags: tags,
		Layers: [][]File{
			root,
			{{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/hello", Body: []byte("hello from layer 2\n")}, {Name: "etc/remove-me", Body: []byte("x\n")}},
			{{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/.wh.remove-me", Body: []byte{}}},
		},
		Cmd:    []string{"sh"},
		Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels: map[string]string{"org.berthd.test": "busybox"},
	}, nil
}

// BenchImage is busybox plus layers-1 layers of random data, totalSize bytes in all.
func BenchImage(tag string, totalSize int64, layers int) (Image, error) {
	img, err := BusyboxImage(tag)
	if err != nil {
		return Image{}, err
	}
	img.Layers = img.Layers[:1]
	per := totalSize / int64(layers-1)
	for i := 1; i < layers; i++ {
		img.Layers = append(img.Layers, []File{{Name: "data/", Type: tar.TypeDir}, {Name: fmt.Sprintf("data/blob%d", i), Size: per, Seed: int64(i)}})
	}
	return img, nil
}
