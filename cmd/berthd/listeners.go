package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berthd/daemon/config"
	"github.com/containerd/log"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/docker/go-connections/tlsconfig"
)

// loadListeners binds every -H address now; they are served only once the daemon is fully up, so early
// clients wait in the accept backlog instead of seeing errors (as dockerd does).
func loadListeners(ctx context.Context, cfg *config.Config) ([]net.Listener, error) {
	hosts := cfg.Hosts
	if len(hosts) == 0 {
		hosts = []string{config.DefaultHost}
	}
	var tlsCfg *tls.Config
	if cfg.TLSEnabled() {
		c, err := serverTLS(cfg)
		if err != nil {
			return nil, err
		}
		tlsCfg = c
	}
	var out []net.Listener
	closeAll := func() {
		for _, l := range out {
			l.Close()
		}
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if seen[h] {
			continue
		}
		seen[h] = true
		proto, addr, _ := strings.Cut(h, "://")
		var ls []net.Listener
		var err error
		switch proto {
		case "unix":
			var l net.Listener
			l, err = unixListener(ctx, addr, cfg.Group)
			ls = []net.Listener{l}
		case "tcp":
			var l net.Listener
			l, err = tcpListener(ctx, addr, cfg, tlsCfg)
			ls = []net.Listener{l}
		case "fd":
			ls, err = fdListeners(addr)
		default:
			err = fmt.Errorf("invalid protocol %q in host %q", proto, h)
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

// unixListener creates the socket 0660, owned by root and the given group (default `docker`; a missing
// default group is only a warning, a missing explicit one is an error, as in dockerd).
func unixListener(ctx context.Context, path, group string) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("unix socket path is empty")
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	gid := 0
	if g, err := user.LookupGroup(group); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	} else if n, convErr := strconv.Atoi(group); convErr == nil {
		gid = n
	} else if group != config.DefaultGroup {
		return nil, fmt.Errorf("can't create unix socket %s: group %q not found", path, group)
	} else {
		log.G(ctx).Warnf("could not change group %s to %s: group not found", path, group)
	}
	// umask would otherwise leave a window in which the socket is wider open than 0660.
	oldMask := umask(0o117)
	l, err := net.Listen("unix", path)
	umask(oldMask)
	if err != nil {
		return nil, err
	}
	if err := os.Chown(path, 0, gid); err != nil {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// tcpListener refuses plain TCP unless --tls=false was given explicitly: an unauthenticated TCP API is
// root on the host for anyone who can reach it. Whatever is not mutual TLS gets dockerd's warnings and its
// start-up delay, so that nobody runs it by accident.
func tcpListener(ctx context.Context, addr string, cfg *config.Config, tlsCfg *tls.Config) (net.Listener, error) {
	if tlsCfg == nil && cfg.TLS == nil {
		return nil, fmt.Errorf("refusing to listen on tcp://%s without TLS: pass --tlsverify with certificates, or --tls=false to accept unauthenticated connections explicitly", addr)
	}
	if !strings.Contains(addr, ":") {
		addr += ":2375"
	}
	if tlsCfg == nil || tlsCfg.ClientAuth != tls.RequireAndVerifyClientCert {
		warnUnauthenticatedTCP(ctx, addr, cfg.TLSVerify != nil)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		return tls.NewListener(l, tlsCfg), nil
	}
	return l, nil
}

// sleep is time.Sleep; tests of the flag combinations replace it.
var sleep = time.Sleep

// warnUnauthenticatedTCP prints dockerd's warnings for a TCP API without client authentication and slows
// the start as dockerd does: a second always, fifteen more for an address beyond loopback unless
// --tlsverify was given explicitly (as false).
func warnUnauthenticatedTCP(ctx context.Context, addr string, verifyExplicit bool) {
	protoAddr := "tcp://" + addr
	l := log.G(ctx).WithField("host", protoAddr)
	l.Warn("Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.")
	l.Warn("Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!")
	sleep(time.Second)
	if verifyExplicit {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	l.Warn("Binding to an IP address without --tlsverify is deprecated. Startup is intentionally being slowed down to show this message")
	l.Warn("Please consider generating tls certificates with client validation to prevent exposing unauthenticated root access to your network")
	l.Warnf("You can override this by explicitly specifying '--%s=false' or '--%s=false'", "tls", "tlsverify")
	l.Warn("Support for listening on TCP without authentication or explicit intent to run without authentication will be removed in the next release")
	sleep(15 * time.Second)
}

// serverTLS builds the listeners' TLS configuration. Unset files default to dockerd's: ca.pem, cert.pem
// and key.pem in $DOCKER_CERT_PATH or ~/.docker. --tlsverify without a CA it can read refuses to start:
// verifying client certificates against the system's public roots would let anyone with a certificate
// from a public CA in.
func serverTLS(cfg *config.Config) (*tls.Config, error) {
	opts := tlsconfig.Options{
		CertFile: certFile(cfg.TLSCert, "cert.pem"), KeyFile: certFile(cfg.TLSKey, "key.pem"),
		ClientAuth: tls.NoClientCert,
	}
	if cfg.TLSVerify != nil && *cfg.TLSVerify {
		opts.CAFile = certFile(cfg.TLSCACert, "ca.pem")
		opts.ClientAuth = tls.RequireAndVerifyClientCert
	}
	c, err := tlsconfig.Server(opts)
	if err != nil {
		return nil, fmt.Errorf("invalid TLS configuration: %w", err)
	}
	if opts.ClientAuth == tls.RequireAndVerifyClientCert && c.ClientCAs == nil {
		return nil, fmt.Errorf("invalid TLS configuration: --tlsverify needs a CA (--tlscacert) to verify client certificates against")
	}
	return c, nil
}

// certFile is path, or dockerd's default for name.
func certFile(path, name string) string {
	if path != "" {
		return path
	}
	dir := os.Getenv("DOCKER_CERT_PATH")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".docker")
	}
	return filepath.Join(dir, name)
}

// fdListeners takes systemd-activated sockets: fd:// (or fd://*) all of them, fd://N only the one with fd N.
func fdListeners(addr string) ([]net.Listener, error) {
	ls, err := activation.Listeners()
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("no sockets found via socket activation: make sure the service was started by systemd")
	}
	if addr == "" || addr == "*" {
		return ls, nil
	}
	n, err := strconv.Atoi(addr)
	if err != nil {
		return nil, fmt.Errorf("failed to parse systemd fd address: should be a number: %v", addr)
	}
	idx := n - 3
	if idx < 0 || idx >= len(ls) {
		return nil, fmt.Errorf("too few socket activated files passed in by systemd")
	}
	for i, l := range ls {
		if i != idx && l != nil {
			l.Close()
		}
	}
	if ls[idx] == nil {
		return nil, fmt.Errorf("fd %d is not a stream socket", n)
	}
	return []net.Listener{ls[idx]}, nil
}
