// Files (this file): the /etc/hostname, /etc/hosts and /etc/resolv.conf a container gets, and the
// parsing of network modes for the OCI spec.

package network

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/atomicwriter"
	"github.com/opencontainers/go-digest"
)

// Mode is a resolved network mode.
type Mode int

// Modes.
const (
	// Private is the default: an own network namespace holding only loopback.
	Private Mode = iota
	None
	Host
	// Container: the namespace and name files of another container (--network container:<x>).
	Container
)

// ParseMode resolves HostConfig.NetworkMode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "default", "bridge":
		return Private, nil
	case "none":
		return None, nil
	case "host":
		return Host, nil
	}
	if strings.HasPrefix(s, "container:") {
		return Container, nil
	}
	// A user-defined network: an own namespace, joined to the network at start.
	return Private, nil
}

// FilesConfig is what the generated files contain.
type FilesConfig struct {
	Hostname   string
	Domainname string
	Mode       string
	ExtraHosts []string
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
	// HostGateway is what --add-host name:host-gateway maps to.
	HostGateway []netip.Addr
}

// WriteFiles writes hostname, hosts and resolv.conf into dir (the container's directory).
func WriteFiles(dir string, c FilesConfig) error {
	mode, err := ParseMode(c.Mode)
	if err != nil {
		return err
	}
	if mode == Container {
		// The owner's files are mounted at start.
		return nil
	}
	host := c.Hostname
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte(host+"\n"), 0o644); err != nil {
		return err
	}
	hin := HostsInput{Hostname: host, Domainname: c.Domainname, Host: mode == Host, ExtraHosts: c.ExtraHosts, HostGateway: c.HostGateway}
	if hin.Host {
		hin.HostFile, _ = os.ReadFile("/etc/hosts")
	}
	hosts, err := BuildHosts(hin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), hosts, 0o644); err != nil {
		return err
	}
	return writeResolvConf(dir, resolvConf(c))
}

// resolvHashFile holds the hash of the resolv.conf berthd wrote last: a file that no longer matches
// it was edited by the user and is never rewritten (dockerd's resolv.conf.hash).
const resolvHashFile = "resolv.conf.hash"

func resolvHash(b []byte) string {
	return digest.FromBytes(b).String()
}

func writeResolvConf(dir string, b []byte) error {
	// In place: a running container (or one sharing its namespace) has the file bind-mounted by inode.
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), b, 0o644); err != nil {
		return err
	}
	return atomicwriter.WriteFile(filepath.Join(dir, resolvHashFile), []byte(resolvHash(b)), 0o644)
}

// RefreshResolvConf regenerates a starting container's resolv.conf from the current host file and
// settings (the host's servers or the daemon's --dns may have changed since create), unless the user
// edited the file: its hash no longer matches the one berthd stored. A file without a stored hash (an
// older berthd) is regenerated, as dockerd does.
func RefreshResolvConf(dir string, c FilesConfig) error {
	if mode, err := ParseMode(c.Mode); err != nil || mode == Container {
		return err
	}
	p := filepath.Join(dir, "resolv.conf")
	cur, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	want, err := os.ReadFile(filepath.Join(dir, resolvHashFile))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if !userEdited(cur, want) {
		next := resolvConf(c)
		if bytes.Equal(cur, next) && len(want) > 0 {
			return nil
		}
		return writeResolvConf(dir, next)
	}
	return nil
}

// userEdited reports whether content differs from what berthd wrote (hash); no hash: not known to
// be edited.
func userEdited(content, hash []byte) bool {
	return len(hash) > 0 && strings.TrimSpace(string(hash)) != resolvHash(content)
}

// resolvConf is the container's file for its mode (resolvconf.go).
func resolvConf(c FilesConfig) []byte {
	path := HostResolvConfPath()
	host, _ := os.ReadFile(path)
	in := ResolvInput{Host: host, HostPath: path, DNS: c.DNS, Search: c.DNSSearch, Options: c.DNSOptions}
	switch c.Mode {
	case "", "default", "bridge", "none":
		in.Mode = Legacy
	case "host":
		in.Mode = HostFile
	default:
		in.Mode = Internal
	}
	b, _ := BuildResolvConf(in)
	return b
}
