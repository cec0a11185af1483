// Command volplugin is a test volume plugin written with go-plugins-helpers: it keeps volumes as
// directories under -root and appends every call it receives ("<Method> [<volume name>]", one a line) to
// the file named by -log or $VOLPLUGIN_LOG, so tests can assert exactly what the daemon asked. With -hang
// it logs each call and never answers it.
//
// It listens on -socket (a stale socket file there is removed first, so it can be killed and started
// again on the same path). Test-only: not shipped.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
)

type driver struct {
	root  string
	scope string
	mu    sync.Mutex
}

func (d *driver) dir(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		return "", fmt.Errorf("invalid volume name %q", name)
	}
	return filepath.Join(d.root, "volumes", name), nil
}

func (d *driver) Create(r *volume.CreateRequest) error {
	p, err := d.dir(r.Name)
	if err != nil {
		return err
	}
	if r.Options["fail"] != "" {
		return fmt.Errorf("create failed as asked: %s", r.Options["fail"])
	}
	return os.MkdirAll(p, 0o755)
}

func (d *driver) vol(name string) (*volume.Volume, error) {
	p, err := d.dir(name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("no such volume: %s", name)
	}
	return &volume.Volume{Name: name, Mountpoint: p, CreatedAt: fi.ModTime().UTC().Format(time.RFC3339)}, nil
}

func (d *driver) List() (*volume.ListResponse, error) {
	entries, err := os.ReadDir(filepath.Join(d.root, "volumes"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	r := &volume.ListResponse{}
	for _, e := range entries {
		r.Volumes = append(r.Volumes, &volume.Volume{Name: e.Name(), Mountpoint: filepath.Join(d.root, "volumes", e.Name())})
	}
	return r, nil
}

func (d *driver) Get(r *volume.GetRequest) (*volume.GetResponse, error) {
	v, err := d.vol(r.Name)
	if err != nil {
		return nil, err
	}
	v.Status = map[string]any{"driver": "volplugin"}
	return &volume.GetResponse{Volume: v}, nil
}

func (d *driver) Remove(r *volume.RemoveRequest) error {
	if _, err := d.vol(r.Name); err != nil {
		return err
	}
	p, _ := d.dir(r.Name)
	return os.RemoveAll(p)
}

func (d *driver) Path(r *volume.PathRequest) (*volume.PathResponse, error) {
	v, err := d.vol(r.Name)
	if err != nil {
		return nil, err
	}
	return &volume.PathResponse{Mountpoint: v.Mountpoint}, nil
}

func (d *driver) Mount(r *volume.MountRequest) (*volume.MountResponse, error) {
	v, err := d.vol(r.Name)
	if err != nil {
		return nil, err
	}
	return &volume.MountResponse{Mountpoint: v.Mountpoint}, nil
}

func (d *driver) Unmount(r *volume.UnmountRequest) error {
	_, err := d.vol(r.Name)
	return err
}

func (d *driver) Capabilities() *volume.CapabilitiesResponse {
	return &volume.CapabilitiesResponse{Capabilities: volume.Capability{Scope: d.scope}}
}

// logger appends one line per call; O_APPEND writes of a short line are atomic, so several instances
// (a restarted plugin) can share a log file.
type logger struct {
	f  *os.File
	mu sync.Mutex
}

func (l *logger) log(line string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.f, line)
}

func main() {
	socket := flag.String("socket", "", "unix socket to listen on")
	root := flag.String("root", "", "directory holding the volumes")
	logPath := flag.String("log", os.Getenv("VOLPLUGIN_LOG"), "file to append every call to")
	scope := flag.String("scope", "local", "scope reported by Capabilities")
	hang := flag.Bool("hang", false, "log every call but never answer (a hung plugin)")
	flag.Parse()
	if *socket == "" || *root == "" {
		fmt.Fprintln(os.Stderr, "volplugin: -socket and -root are required")
		os.Exit(2)
	}
	if err := run(*socket, *root, *logPath, *scope, *hang); err != nil {
		fmt.Fprintln(os.Stderr, "volplugin:", err)
		os.Exit(1)
	}
}

func run(socket, root, logPath, scope string, hang bool) error {
	if err := os.MkdirAll(filepath.Join(root, "volumes"), 0o755); err != nil {
		return err
	}
	var lg *logger
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		lg = &logger{f: f}
	}

	// The helper serves on an inner socket; the public socket is a logging reverse proxy in front of
	// it, because the helper's mux (which answers /Plugin.Activate itself) cannot be wrapped.
	inner := filepath.Join(root, fmt.Sprintf("inner-%d.sock", os.Getpid()))
	os.Remove(inner)
	il, err := net.Listen("unix", inner)
	if err != nil {
		return err
	}
	h := volume.NewHandler(&driver{root: root, scope: scope})
	go h.Serve(il) //nolint:errcheck // ends with the process

	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "volplugin"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", inner)
		}},
	}
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct{ Name string }
		_ = json.Unmarshal(body, &req)
		line := strings.TrimPrefix(r.URL.Path, "/")
		if req.Name != "" {
			line += " " + req.Name
		}
		lg.log(line)
		if hang {
			<-r.Context().Done()
			return
		}
		proxy.ServeHTTP(w, r)
	})

	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: front, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		srv.Close()
	}()
	err = srv.Serve(l)
	os.Remove(inner)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}
