package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/hack/bench/internal/benchutil"
)

// floorServer answers the docker CLI's build requests by reading the context to the end and discarding
// it: a warm build on any daemon costs at least what `docker build` takes against it (the CLI walks and
// tars the context, the body crosses the socket).
type floorServer struct {
	ln  net.Listener
	srv *http.Server
	d   *benchutil.Daemon
}

func startFloor(dir string) (*floorServer, error) {
	sock := filepath.Join(dir, "floor.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.47")
		w.Header().Set("Ostype", "linux")
		if r.Method != http.MethodPost || filepath.Base(r.URL.Path) != "build" {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "OK")
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		id := "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		enc.Encode(map[string]any{"aux": map[string]string{"ID": id}})
		enc.Encode(map[string]string{"stream": id + "\n"})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	if err := os.MkdirAll(filepath.Join(dir, "cli"), 0o700); err != nil {
		return nil, err
	}
	return &floorServer{ln: ln, srv: srv, d: &benchutil.Daemon{Name: "floor", Dir: dir, Sock: sock}}, nil
}
