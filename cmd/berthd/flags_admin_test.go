package main

import (
	"os"
	"strings"
	"testing"

	"github.com/berthd/berthd/daemon/config"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// dockerdFlags is `dockerd --help` (v20.10 to v28, Linux) with a value to set each flag to. Networking
// and security flags are defined by their own areas; until then they are unknown flags here.
var dockerdFlags = map[string]string{
	"add-runtime": "crun=/usr/bin/crun", "allow-nondistributable-artifacts": "r:5000", "api-cors-header": "*",
	"authorization-plugin": "authz", "bip": "10.9.0.1/24", "bridge": "br0", "cgroup-parent": "/p",
	"config-file": "/x.json", "containerd": "/c.sock", "containerd-namespace": "n",
	"containerd-plugins-namespace": "p", "cpu-rt-period": "1000", "cpu-rt-runtime": "1000",
	"cri-containerd": "true", "data-root": "/d", "debug": "true", "default-address-pool": "base=10.10.0.0/16,size=24",
	"default-cgroupns-mode": "private", "default-gateway": "10.0.0.1", "default-gateway-v6": "fe80::1",
	"default-ipc-mode": "shareable", "default-runtime": "runc", "default-shm-size": "128M",
	"default-ulimit": "nofile=1024:2048", "dns": "1.1.1.1", "dns-opt": "ndots:2", "dns-search": "example",
	"exec-opt": "native.cgroupdriver=cgroupfs", "exec-root": "/e", "experimental": "true",
	"fixed-cidr": "10.9.0.0/25", "fixed-cidr-v6": "fd00::/64", "group": "wheel", "host": "unix:///x.sock",
	"host-gateway-ip": "10.0.0.2", "icc": "false", "init": "true", "init-path": "/usr/bin/tini",
	"insecure-registry": "r:5000", "ip": "127.0.0.1", "ip-forward": "false", "ip-masq": "false",
	"ip6tables": "true", "iptables": "false", "ipv6": "true", "label": "a=b", "live-restore": "true",
	"log-driver": "local", "log-level": "warn", "log-opt": "max-size=10m", "max-concurrent-downloads": "1",
	"max-concurrent-uploads": "1", "max-download-attempts": "2", "metrics-addr": "127.0.0.1:9323", "mtu": "1400",
	"network-control-plane-mtu": "1400", "no-new-privileges": "true", "node-generic-resource": "gpu=1",
	"oom-score-adjust": "-500", "pidfile": "/p.pid", "raw-logs": "true", "registry-mirror": "https://m",
	"rootless": "true", "seccomp-profile": "/s.json", "selinux-enabled": "true", "shutdown-timeout": "30",
	"storage-driver": "overlayfs", "storage-opt": "dm.basesize=20G", "swarm-default-advertise-addr": "eth0",
	"tls": "true", "tlscacert": "/ca", "tlscert": "/c", "tlskey": "/k", "tlsverify": "true",
	"userland-proxy": "false", "userland-proxy-path": "/p", "userns-remap": "default", "validate": "true",
	"log-format": "json", "http-proxy": "http://p:3128", "https-proxy": "http://p:3128", "no-proxy": "x",
	"cdi-spec-dir": "/cdi", "network-diagnostic-port": "2000", "default-network-opt": "bridge=mtu=1400",
	"feature": "buildkit=true", "bip6": "fd00::1/64", "allow-direct-routing": "true",
	"bridge-accept-fwmark": "1", "ip-forward-no-drop": "true", "firewall-backend": "nftables",
	"cluster-store": "consul://x", "cluster-advertise": "eth0:2376", "cluster-store-opt": "kv.path=/x",
}

// pendingFlags belong to the networking and security areas (they define them).
var pendingFlags = map[string]bool{
	"bip": true, "bridge": true, "default-address-pool": true, "dns": true, "dns-opt": true, "dns-search": true,
	"fixed-cidr": true, "fixed-cidr-v6": true, "icc": true, "ip": true, "ip-forward": true, "ip-masq": true,
	"ip6tables": true, "iptables": true, "ipv6": true, "mtu": true, "userland-proxy": true,
	"authorization-plugin": true, "no-new-privileges": true, "seccomp-profile": true, "selinux-enabled": true,
	"userns-remap": true,
}

// TestEveryDockerdFlag is the table of dockerd's flags: each parses under dockerd's name and is either
// implemented (its value reaches the config) or refused, naming the flag, when set.
func TestEveryDockerdFlag(t *testing.T) {
	for name, value := range dockerdFlags {
		t.Run(name, func(t *testing.T) {
			o := newOptions()
			if o.flags.Lookup(name) == nil {
				assert.Check(t, pendingFlags[name], "dockerd flag --%s is not defined", name)
				return
			}
			assert.NilError(t, o.parse([]string{"--" + name + "=" + value}))
			err := o.refusedOptions()
			if _, refused := o.flags.Lookup(name).Value.(*refusedValue); refused {
				assert.Check(t, is.ErrorContains(err, "berthd does not support the following flags: --"+name+" ("))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, o.flags.Changed(name))
		})
	}
}

func TestRefusedFlagHarmlessValue(t *testing.T) {
	o := newOptions()
	assert.NilError(t, o.parse([]string{"--rootless=false", "--cri-containerd=false", "--default-ipc-mode", "private"}))
	assert.NilError(t, o.refusedOptions())
	o = newOptions()
	assert.NilError(t, o.parse([]string{"--rootless", "--storage-opt", "a=b"}))
	err := o.refusedOptions()
	assert.Check(t, is.ErrorContains(err, "--rootless (rootless mode"))
	assert.Check(t, is.ErrorContains(err, "--storage-opt ("))
}

func TestAdminFlagsReachConfig(t *testing.T) {
	o := newOptions()
	assert.NilError(t, o.parse([]string{"--log-driver", "local", "--log-opt", "max-size=1m", "--log-opt", "max-file=2",
		"--default-ulimit", "nofile=10:20", "--default-ulimit", "nproc=5", "--registry-mirror", "http://127.0.0.1:5001",
		"--exec-opt", "native.cgroupdriver=systemd", "--default-shm-size", "1g", "--add-runtime", "r=/bin/r",
		"--default-runtime", "r", "--http-proxy", "http://p:1"}))
	c := o.cfg
	assert.Check(t, is.Equal(c.LogConfig.Type, "local"))
	assert.Check(t, is.DeepEqual(c.LogConfig.Config, map[string]string{"max-size": "1m", "max-file": "2"}))
	assert.Check(t, c.Ulimits["nofile"].Soft == 10 && c.Ulimits["nproc"].Hard == 5)
	assert.Check(t, is.Equal(c.CgroupDriver(), "systemd"))
	assert.Check(t, is.Equal(int64(c.ShmSize), int64(1<<30)))
	assert.Check(t, is.Equal(c.Runtimes["r"].Path, "/bin/r"))
	assert.Check(t, is.Equal(c.Proxies.HTTPProxy, "http://p:1"))
	assert.NilError(t, c.Validate())
	ex := o.explicit()
	for _, k := range []string{"log-opts", "default-ulimits", "registry-mirrors", "exec-opts", "proxies"} {
		_, ok := ex[k]
		assert.Check(t, ok, k)
	}
	known := config.KnownKeys()
	for k := range ex {
		assert.Check(t, known[k], k)
	}
	assert.Check(t, strings.Contains(ex["default-ulimits"], "nofile=10:20"))
}

func TestRuntimesMergeFlagAndFile(t *testing.T) {
	o := newOptions()
	assert.NilError(t, o.parse([]string{"--add-runtime", "a=/bin/a"}))
	p := t.TempDir() + "/daemon.json"
	assert.NilError(t, os.WriteFile(p, []byte(`{"runtimes": {"b": {"path": "/bin/b"}}}`), 0o600))
	assert.NilError(t, config.LoadFile(o.cfg, p, true, o.explicit()))
	assert.Check(t, is.Equal(o.cfg.Runtimes["a"].Path, "/bin/a"))
	assert.Check(t, is.Equal(o.cfg.Runtimes["b"].Path, "/bin/b"))
}

func TestFeatureFlag(t *testing.T) {
	o := newOptions()
	assert.NilError(t, o.parse([]string{"--feature", "buildkit=false", "--feature", "containerd-snapshotter"}))
	assert.NilError(t, o.refusedOptions())
	assert.Check(t, is.DeepEqual(o.cfg.Features, config.FeaturesConfig{"buildkit": false, "containerd-snapshotter": true}))
	assert.Check(t, !o.cfg.Features.BuildKitEnabled())
	assert.Check(t, is.ErrorContains(newOptions().parse([]string{"--feature", "buildkit=maybe"}), `invalid value for feature buildkit: "maybe"`))
}
