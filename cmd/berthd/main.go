// Command berthd is the daemon: it parses dockerd's flags, merges daemon.json, sets up logging, the
// pidfile, listeners and signals, builds the daemon and its API routers, and serves until told to stop.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/berthd/berthd/api/server"
	"github.com/berthd/berthd/daemon"
	"github.com/berthd/berthd/daemon/config"
	"github.com/containerd/log"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func umask(m int) int { return unix.Umask(m) }

func run(args []string, stdout, stderr io.Writer) int {
	// journald restarts would otherwise kill the daemon through a broken stdout pipe.
	signal.Ignore(syscall.SIGPIPE)

	o := newOptions()
	o.flags.SetOutput(stderr)
	if err := o.parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, err)
		return 125
	}
	if o.version {
		version, commit := daemon.Version()
		fmt.Fprintf(stdout, "berthd version %s, build %s\n", version, commit)
		return 0
	}
	cfg := o.cfg
	err := o.refusedOptions()
	if err == nil {
		err = config.LoadFile(cfg, o.configFile, o.flags.Changed("config-file"), o.explicit())
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil {
		err = daemon.ValidateConfig(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if o.validate {
		fmt.Fprintln(stdout, "configuration OK")
		return 0
	}
	setLogLevel(cfg)
	ctx := context.Background()
	var warnings []string
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "berthd needs to be started with root privileges (it manages mounts, namespaces and containerd)")
		return 1
	}
	umask(0o022)
	if err := applyProcessOptions(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}

	if err := writePidfile(cfg.Pidfile); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.Remove(cfg.Pidfile)

	listeners, err := loadListeners(ctx, cfg)
	if err != nil {
		log.G(ctx).WithError(err).Error("failed to load listeners")
		return 1
	}

	stopCh := make(chan struct{})
	sigs := trapSignals(ctx, cfg, stopCh)
	defer signal.Stop(sigs)

	d, err := daemon.New(ctx, cfg, warnings)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		log.G(ctx).WithError(err).Error("failed to start daemon")
		return 1
	}
	go handleReload(ctx, d, args)
	stopMetrics, err := serveMetrics(ctx, cfg.MetricsAddress)
	if err != nil {
		log.G(ctx).WithError(err).Error("failed to listen on --metrics-addr")
		shutdown(ctx, d, server.New(server.Config{}))
		return 1
	}
	defer stopMetrics()

	srv := server.New(server.Config{ServerVersion: version(), Experimental: cfg.Experimental})
	if err := setupAuthz(ctx, d, srv, cfg); err != nil {
		for _, l := range listeners {
			l.Close()
		}
		log.G(ctx).WithError(err).Error("failed to start daemon")
		shutdown(ctx, d, srv)
		return 1
	}
	srv.InitRouter(routers(d)...)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, listeners) }()
	log.G(ctx).WithField("version", version()).Info("berthd has completed initialization")
	go sddaemon.SdNotify(false, sddaemon.SdNotifyReady)

	code := 0
	select {
	case <-stopCh:
	case err := <-serveErr:
		if err != nil {
			log.G(ctx).WithError(err).Error("API server failed")
			code = 1
		}
	}
	go sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	shutdown(ctx, d, srv)
	return code
}

// shutdown stops the API (5 s for requests in flight), then the daemon, bounded as dockerd bounds it: the
// larger of --shutdown-timeout and the longest container stop timeout, plus 5 s (-1 waits forever).
func shutdown(ctx context.Context, d *daemon.Daemon, srv *server.Server) {
	apiCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	srv.Shutdown(apiCtx)
	cancel()
	dctx := ctx
	if t := d.Config().ShutdownTimeout; t >= 0 {
		limit := time.Duration(t) * time.Second
		if st := d.ContainerStopTimeout(); st > limit {
			limit = st
		}
		var c context.CancelFunc
		dctx, c = context.WithTimeout(ctx, limit+5*time.Second)
		defer c()
	}
	d.Shutdown(dctx)
	log.G(ctx).Info("berthd shut down")
}

func setLogLevel(cfg *config.Config) {
	level := cfg.LogLevel
	if cfg.Debug {
		level = "debug"
	}
	_ = log.SetLevel(level)
	setLogFormat(cfg)
}

// writePidfile refuses to overwrite the pidfile of a live process: two daemons on one data root would
// corrupt each other's state.
func writePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		var pid int
		if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err == nil && pid > 0 && pid != os.Getpid() {
			if unix.Kill(pid, 0) == nil || errors.Is(unix.Kill(pid, 0), unix.EPERM) {
				if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && len(comm) > 0 {
					return fmt.Errorf("pid file found, ensure berthd is not running or delete %s", path)
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(fmt.Sprintf("%d", os.Getpid())), 0o644)
}

// trapSignals: SIGINT/SIGTERM start a graceful stop (the third forces exit without cleanup), SIGUSR1 dumps
// goroutine stacks to the exec root.
func trapSignals(ctx context.Context, cfg *config.Config, stopCh chan struct{}) chan os.Signal {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	go func() {
		interrupts := 0
		for s := range sigs {
			switch s {
			case syscall.SIGUSR1:
				dumpStacks(ctx, cfg.ExecRoot)
			case syscall.SIGINT, syscall.SIGTERM:
				interrupts++
				switch {
				case interrupts == 1:
					log.G(ctx).Infof("Processing signal '%v'", s)
					close(stopCh)
				case interrupts >= 3:
					log.G(ctx).Info("Forcing berthd shutdown without cleanup; 3 interrupts received")
					os.Exit(128 + int(s.(syscall.Signal)))
				}
			}
		}
	}()
	return sigs
}

func dumpStacks(ctx context.Context, dir string) {
	name := "goroutine-stacks-" + strings.ReplaceAll(time.Now().Format(time.RFC3339), ":", "") + ".log"
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o666)
	if err != nil {
		log.G(ctx).WithError(err).Error("failed to write goroutine stacks")
		return
	}
	defer f.Close()
	_ = pprof.Lookup("goroutine").WriteTo(f, 2)
	log.G(ctx).Infof("goroutine stacks written to %s", path)
}

// handleReload re-reads daemon.json on SIGHUP and applies the reloadable keys. The command line is parsed
// again so that flags and file merge exactly as at start.
func handleReload(ctx context.Context, d *daemon.Daemon, args []string) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for range hup {
		o := newOptions()
		err := o.parse(args)
		if err == nil {
			err = o.refusedOptions()
		}
		if err == nil {
			err = config.LoadFile(o.cfg, o.configFile, o.flags.Changed("config-file"), o.explicit())
		}
		if err == nil {
			err = o.cfg.Validate()
		}
		if err == nil {
			err = daemon.ValidateConfig(o.cfg)
		}
		if err == nil {
			err = reloadAuthz(ctx, o.cfg)
		}
		if err != nil {
			log.G(ctx).WithError(err).Error("reload: configuration not applied")
			continue
		}
		cur := d.Config()
		if keys := config.NeedsRestart(&cur, o.cfg); len(keys) > 0 {
			log.G(ctx).Warnf("reload: %s changed but take effect only after a restart", strings.Join(keys, ", "))
		}
		d.Reload(o.cfg)
		setLogLevel(o.cfg)
		log.G(ctx).Info("configuration reloaded")
	}
}

func version() string {
	v, _ := daemon.Version()
	return v
}
