package v1

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
)

// address is where one plugin instance listens, as its socket or spec file says.
type address struct {
	network  string // "unix" or "tcp"
	dialAddr string // socket path or host:port
	scheme   string // "http" or "https"
	host     string // Host header / URL host
	basePath string // path prefix from a spec URL, "" for sockets
	tls      *tls.Config
	source   string // the file it was found in, for messages
}

func (a *address) url(method string) string {
	return a.scheme + "://" + a.host + strings.TrimSuffix(a.basePath, "/") + "/" + method
}

// ValidName reports whether name can be a legacy plugin's name. Names come from API clients and are
// joined to directories, so anything that could leave the directory (separators, "..", NUL) is refused.
func ValidName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	return !strings.ContainsAny(name, "/\\\x00")
}

func notFound(name string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", name))
}

// lookup finds the plugin's address on disk: sockets first, then each spec dir's .spec then .json. It
// only stats and reads small files, so it is cheap enough to run on every lookup (no negative cache).
func lookup(cfg *Config, name string) (*address, error) {
	if !ValidName(name) {
		return nil, notFound(name)
	}
	if cfg.SocketDir != "" {
		for _, p := range []string{
			filepath.Join(cfg.SocketDir, name+".sock"),
			filepath.Join(cfg.SocketDir, name, name+".sock"),
		} {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
				return unixAddress(p), nil
			}
		}
	}
	for _, dir := range cfg.SpecDirs {
		if dir == "" {
			continue
		}
		for _, p := range []string{
			filepath.Join(dir, name+".spec"),
			filepath.Join(dir, name, name+".spec"),
		} {
			if a, err := readSpec(p); err == nil {
				return a, nil
			} else if !os.IsNotExist(err) {
				return nil, errors.Wrapf(err, "plugin %q", name)
			}
		}
		for _, p := range []string{
			filepath.Join(dir, name+".json"),
			filepath.Join(dir, name, name+".json"),
		} {
			if a, err := readJSONSpec(p); err == nil {
				return a, nil
			} else if !os.IsNotExist(err) {
				return nil, errors.Wrapf(err, "plugin %q", name)
			}
		}
	}
	return nil, notFound(name)
}

func unixAddress(path string) *address {
	// The Host header is a fixed name, as moby v27 sends, not the socket path.
	return &address{network: "unix", dialAddr: path, scheme: "http", host: "plugin.moby.localhost", source: path}
}

const maxSpecSize = 64 << 10

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > maxSpecSize {
		return nil, errors.Errorf("%s: spec file too large", path)
	}
	return os.ReadFile(path)
}

func readSpec(path string) (*address, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	a, err := parseURL(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, errors.Wrapf(err, "%s", path)
	}
	if a.scheme == "https" {
		// As dockerd: socket and .spec plugins get no verification; use a .json spec for real TLS.
		a.tls = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // dockerd parity, documented above
	}
	a.source = path
	return a, nil
}

type jsonSpec struct {
	Name      string
	Addr      string
	TLSConfig *struct {
		InsecureSkipVerify bool
		CAFile             string
		CertFile           string
		KeyFile            string
	}
}

func readJSONSpec(path string) (*address, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	var s jsonSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, errors.Wrapf(err, "%s: invalid plugin spec", path)
	}
	a, err := parseURL(strings.TrimSpace(s.Addr))
	if err != nil {
		return nil, errors.Wrapf(err, "%s", path)
	}
	if s.TLSConfig != nil {
		tc := &tls.Config{InsecureSkipVerify: s.TLSConfig.InsecureSkipVerify || s.TLSConfig.CAFile == ""} //nolint:gosec // dockerd parity
		if s.TLSConfig.CAFile != "" {
			pem, err := os.ReadFile(s.TLSConfig.CAFile)
			if err != nil {
				return nil, errors.Wrapf(err, "%s: CA file", path)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.Errorf("%s: no certificates in %s", path, s.TLSConfig.CAFile)
			}
			tc.RootCAs = pool
		}
		if s.TLSConfig.CertFile != "" || s.TLSConfig.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(s.TLSConfig.CertFile, s.TLSConfig.KeyFile)
			if err != nil {
				return nil, errors.Wrapf(err, "%s: client certificate", path)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		a.tls = tc
		if a.network == "tcp" {
			a.scheme = "https"
		}
	} else if a.scheme == "https" {
		a.tls = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // dockerd parity
	}
	a.source = path
	return a, nil
}

// parseURL accepts unix://PATH, tcp://HOST:PORT, http://HOST[:PORT][/prefix] and https://....
func parseURL(s string) (*address, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "unix":
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		if p == "" {
			return nil, errors.Errorf("invalid plugin address %q: no socket path", s)
		}
		a := unixAddress(p)
		return a, nil
	case "tcp", "http", "https":
		if u.Host == "" {
			return nil, errors.Errorf("invalid plugin address %q: no host", s)
		}
		scheme := "http"
		if u.Scheme == "https" {
			scheme = "https"
		}
		base := ""
		if u.Scheme != "tcp" {
			base = u.Path
		}
		return &address{network: "tcp", dialAddr: u.Host, scheme: scheme, host: u.Host, basePath: base}, nil
	case "":
		return nil, errors.Errorf("Unknown protocol in plugin address %q", s)
	default:
		return nil, errors.Errorf("Unknown protocol %q in plugin address %q", u.Scheme, s)
	}
}

// scan lists every plugin name present in the socket and spec directories, sorted and unique.
func scan(cfg *Config) []string {
	seen := map[string]bool{}
	add := func(dir string, exts ...string) {
		if dir == "" {
			return
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() {
				for _, ext := range exts {
					if _, err := os.Stat(filepath.Join(dir, n, n+ext)); err == nil && ValidName(n) {
						seen[n] = true
					}
				}
				continue
			}
			for _, ext := range exts {
				if base, ok := strings.CutSuffix(n, ext); ok && ValidName(base) {
					seen[base] = true
				}
			}
		}
	}
	add(cfg.SocketDir, ".sock")
	for _, d := range cfg.SpecDirs {
		add(d, ".spec", ".json")
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
