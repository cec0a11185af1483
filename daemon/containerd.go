package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/berthd/berthd/daemon/config"
	"github.com/berthd/berthd/libcontainerd/remote"
	"github.com/berthd/berthd/libcontainerd/supervisor"
	"github.com/containerd/containerd"
	"github.com/containerd/log"
)

// systemContainerdEnv overrides the path probed for a system containerd; tests set it to keep berthd on
// its own supervised containerd even on a machine that runs one.
const systemContainerdEnv = "BERTHD_SYSTEM_CONTAINERD"

type containerdConn struct {
	address    string
	supervisor *supervisor.Supervisor
	client     *containerd.Client
}

// initContainerd connects to --containerd, else to a system containerd that answers, else starts and
// supervises berthd's own (root under the data root, state and socket under the exec root).
func (d *Daemon) initContainerd(ctx context.Context) error {
	conn := &containerdConn{address: d.cfg.ContainerdAddr}
	if conn.address == "" {
		probe := config.SystemContainerdAddress
		if v, ok := os.LookupEnv(systemContainerdEnv); ok {
			probe = v
		}
		if probe != "" && socketAnswers(probe) {
			conn.address = probe
			log.G(ctx).WithField("address", probe).Info("using the system containerd")
		}
	}
	if conn.address == "" {
		sup, err := supervisor.Start(ctx, supervisor.Config{
			RootDir:  filepath.Join(d.cfg.Root, "containerd", "daemon"),
			StateDir: filepath.Join(d.cfg.ExecRoot, "containerd"),
			LogLevel: d.cfg.LogLevel,
			Debug:    d.cfg.Debug,
		})
		if err != nil {
			return err
		}
		conn.supervisor = sup
		conn.address = sup.Address()
		d.onShutdown("supervised containerd", func(ctx context.Context) error {
			if d.Config().LiveRestore {
				// Running containers keep their shims either way; leaving containerd up as well lets the
				// next berthd adopt it (through its pidfile) and find every task where it was.
				sup.Detach()
				return nil
			}
			return sup.Stop(ctx)
		})
	}
	client, err := containerd.New(conn.address,
		containerd.WithDefaultNamespace(d.cfg.ContainerdNamespace),
		containerd.WithTimeout(20*time.Second), remote.WithMetrics())
	if err != nil {
		return err
	}
	conn.client = client
	d.onShutdown("containerd client", func(context.Context) error { return client.Close() })
	d.ctd = conn
	return nil
}

func socketAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// containerdVersion is the /version and /info source; bounded so a stuck containerd cannot hang /info.
func (d *Daemon) containerdVersion(ctx context.Context) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := d.ctd.client.Version(ctx)
	if err != nil {
		return "", "", err
	}
	return v.Version, v.Revision, nil
}

// ContainerdAddress is the gRPC address in use.
func (d *Daemon) ContainerdAddress() string { return d.ctd.address }
