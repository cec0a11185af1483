package main

import (
	"fmt"

	"github.com/berthd/berthd/daemon/config"
	"github.com/spf13/pflag"
)

// options are the command line: the daemon config fields bound to dockerd's flag names, plus the flags that
// only steer the command.
type options struct {
	cfg        *config.Config
	configFile string
	validate   bool
	version    bool
	tls        bool
	tlsVerify  bool
	flags      *pflag.FlagSet
}

// flagKeys maps a flag name to its daemon.json key where the two differ.
var flagKeys = map[string]string{
	"host":                         "hosts",
	"containerd-plugins-namespace": "containerd-plugin-namespace",
	"plugins-spec-dir":             "plugins-spec-dirs",
	"insecure-registry":            "insecure-registries",
	"label":                        "labels",
}

func newOptions() *options {
	o := &options{cfg: config.New()}
	fs := pflag.NewFlagSet("berthd", pflag.ContinueOnError)
	fs.SortFlags = false
	c := o.cfg
	fs.StringArrayVarP(&c.Hosts, "host", "H", nil, "Daemon socket(s) to connect to (unix://, tcp://, fd://)")
	fs.StringVar(&c.Root, "data-root", c.Root, "Root directory of persistent berthd state")
	fs.StringVar(&c.ExecRoot, "exec-root", c.ExecRoot, "Root directory for execution state files")
	fs.StringVarP(&c.Pidfile, "pidfile", "p", c.Pidfile, "Path to use for daemon PID file")
	fs.StringVar(&c.ContainerdAddr, "containerd", "", "containerd grpc address (default: a running system containerd, else a supervised one)")
	fs.StringVar(&c.ContainerdNamespace, "containerd-namespace", c.ContainerdNamespace, "containerd namespace to use")
	fs.StringVar(&c.ContainerdPluginNamespace, "containerd-plugins-namespace", c.ContainerdPluginNamespace, "containerd namespace to use for plugins")
	fs.StringVar(&o.configFile, "config-file", config.DefaultConfigFile, "Daemon configuration file")
	fs.BoolVarP(&c.Debug, "debug", "D", false, "Enable debug mode")
	fs.StringVarP(&c.LogLevel, "log-level", "l", c.LogLevel, `Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")`)
	fs.BoolVar(&c.LiveRestore, "live-restore", false, "Enable live restore of containers when the daemon stops")
	fs.IntVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "Default shutdown timeout in seconds")
	fs.StringVarP(&c.Group, "group", "G", c.Group, "Group for the unix socket")
	fs.BoolVar(&o.tls, "tls", false, "Use TLS; implied by --tlsverify")
	fs.BoolVar(&o.tlsVerify, "tlsverify", false, "Use TLS and verify the remote")
	fs.StringVar(&c.TLSCACert, "tlscacert", "", "Trust certs signed only by this CA")
	fs.StringVar(&c.TLSCert, "tlscert", "", "Path to TLS certificate file")
	fs.StringVar(&c.TLSKey, "tlskey", "", "Path to TLS key file")
	fs.StringVar(&c.PluginsSocketDir, "plugins-socket-dir", c.PluginsSocketDir, "Directory scanned for legacy plugin sockets")
	fs.StringArrayVar(&c.PluginsSpecDirs, "plugins-spec-dir", c.PluginsSpecDirs, "Directory scanned for legacy plugin .spec/.json files (repeatable)")
	fs.StringVarP(&c.StorageDriver, "storage-driver", "s", "", "Storage driver (containerd snapshotter) to use")
	fs.StringArrayVar(&c.Labels, "label", nil, "Set key=value labels to the daemon")
	fs.StringArrayVar(&c.InsecureRegistries, "insecure-registry", nil, "Registry (host[:port]) reached over plain HTTP")
	fs.BoolVar(&c.Experimental, "experimental", false, "Enable experimental features")
	fs.StringVar(&c.MetricsAddress, "metrics-addr", "", "Set default address and port to serve the metrics api on")
	addSecurityFlags(fs, c)
	// Areas' flags before the admin set, which defines the dockerd flags nobody implements as refused.
	addNetworkFlags(fs, &c.NetworkConfig)
	addBuilderFlags(fs, c)
	o.addAdminFlags(fs)
	fs.BoolVar(&o.validate, "validate", false, "Validate daemon configuration and exit")
	fs.BoolVarP(&o.version, "version", "v", false, "Print version information and quit")
	o.flags = fs
	return o
}

// parse parses args and applies --tls/--tlsverify only when given, so that "not given" and "false" differ
// (tcp without TLS needs an explicit --tls=false).
func (o *options) parse(args []string) error {
	if err := o.flags.Parse(args); err != nil {
		return err
	}
	if o.flags.NArg() > 0 {
		return fmt.Errorf(`"berthd" accepts no arguments, got %q`, o.flags.Args())
	}
	if o.flags.Changed("tls") {
		v := o.tls
		o.cfg.TLS = &v
	}
	if o.flags.Changed("tlsverify") {
		v := o.tlsVerify
		o.cfg.TLSVerify = &v
	}
	return nil
}

// explicit lists the daemon.json keys set on the command line, with their values as text, for the
// conflict check.
func (o *options) explicit() map[string]string {
	m := map[string]string{}
	o.flags.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "config-file", "validate", "version":
			return
		}
		if k := flagKey(f.Name); !mergedKeys[k] {
			m[k] = f.Value.String()
		}
	})
	return m
}
