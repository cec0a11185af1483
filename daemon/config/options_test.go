package config

import (
	"errors"
	"sort"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// implementedKeys are the dockerd keys berthd acts on; each has a value that must load, validate and land
// in Config.
var implementedKeys = map[string]struct {
	value string
	check func(*Config) bool
}{
	"containerd":                  {`"/run/x.sock"`, func(c *Config) bool { return c.ContainerdAddr == "/run/x.sock" }},
	"containerd-namespace":        {`"ns"`, func(c *Config) bool { return c.ContainerdNamespace == "ns" }},
	"containerd-plugin-namespace": {`"pns"`, func(c *Config) bool { return c.ContainerdPluginNamespace == "pns" }},
	"data-root":                   {`"/srv/b"`, func(c *Config) bool { return c.Root == "/srv/b" }},
	"exec-root":                   {`"/run/b"`, func(c *Config) bool { return c.ExecRoot == "/run/b" }},
	"debug":                       {`true`, func(c *Config) bool { return c.Debug }},
	"experimental":                {`true`, func(c *Config) bool { return c.Experimental }},
	"group":                       {`"wheel"`, func(c *Config) bool { return c.Group == "wheel" }},
	"hosts":                       {`["unix:///x.sock"]`, func(c *Config) bool { return len(c.Hosts) == 1 }},
	"insecure-registries":         {`["r:5000"]`, func(c *Config) bool { return len(c.InsecureRegistries) == 1 }},
	"labels":                      {`["a=b"]`, func(c *Config) bool { return len(c.Labels) == 1 }},
	"live-restore":                {`true`, func(c *Config) bool { return c.LiveRestore }},
	"log-level":                   {`"warn"`, func(c *Config) bool { return c.LogLevel == "warn" }},
	"metrics-addr":                {`"127.0.0.1:9323"`, func(c *Config) bool { return c.MetricsAddress == "127.0.0.1:9323" }},
	"pidfile":                     {`"/run/b.pid"`, func(c *Config) bool { return c.Pidfile == "/run/b.pid" }},
	"shutdown-timeout":            {`30`, func(c *Config) bool { return c.ShutdownTimeout == 30 }},
	"storage-driver":              {`"overlayfs"`, func(c *Config) bool { return c.StorageDriver == "overlayfs" }},
	"tls":                         {`false`, func(c *Config) bool { return c.TLS != nil && !*c.TLS }},
	"tlsverify":                   {`false`, func(c *Config) bool { return c.TLSVerify != nil }},
	"tlscacert":                   {`"/ca"`, func(c *Config) bool { return c.TLSCACert == "/ca" }},
	"tlscert":                     {`"/c"`, func(c *Config) bool { return c.TLSCert == "/c" }},
	"tlskey":                      {`"/k"`, func(c *Config) bool { return c.TLSKey == "/k" }},
	"log-driver":                  {`"local"`, func(c *Config) bool { return c.LogConfig.Type == "local" }},
	"log-opts":                    {`{"max-size":"10m","max-file":"3"}`, func(c *Config) bool { return c.LogConfig.Config["max-file"] == "3" }},
	"log-format":                  {`"json"`, func(c *Config) bool { return c.LogFormat == "json" }},
	"raw-logs":                    {`true`, func(c *Config) bool { return c.RawLogs }},
	"registry-mirrors":            {`["https://mirror.example"]`, func(c *Config) bool { return len(c.RegistryMirrors) == 1 }},
	"max-concurrent-downloads":    {`1`, func(c *Config) bool { return c.MaxConcurrentDownloads == 1 }},
	"max-concurrent-uploads":      {`2`, func(c *Config) bool { return c.MaxConcurrentUploads == 2 }},
	"exec-opts":                   {`["native.cgroupdriver=systemd"]`, func(c *Config) bool { return c.CgroupDriver() == "systemd" }},
	"default-ulimits":             {`{"nofile":{"Name":"nofile","Soft":1024,"Hard":2048}}`, func(c *Config) bool { return c.Ulimits["nofile"].Hard == 2048 }},
	"default-shm-size":            {`"128M"`, func(c *Config) bool { return c.ShmSize == 128<<20 }},
	"cgroup-parent":               {`"/custom"`, func(c *Config) bool { return c.CgroupParent == "/custom" }},
	"default-cgroupns-mode":       {`"private"`, func(c *Config) bool { return c.CgroupNamespaceMode == "private" }},
	"default-runtime":             {`"crun"`, func(c *Config) bool { return c.DefaultRuntime == "crun" }},
	"runtimes":                    {`{"crun":{"path":"/usr/bin/crun"}}`, func(c *Config) bool { return c.Runtimes["crun"].Path == "/usr/bin/crun" }},
	"init":                        {`true`, func(c *Config) bool { return c.Init }},
	"init-path":                   {`"/usr/bin/tini"`, func(c *Config) bool { return c.InitPath == "/usr/bin/tini" }},
	"oom-score-adjust":            {`-500`, func(c *Config) bool { return c.OOMScoreAdjust == -500 }},
	"proxies":                     {`{"http-proxy":"http://p:3128","no-proxy":"localhost"}`, func(c *Config) bool { return c.Proxies.HTTPProxy == "http://p:3128" }},
}

// TestEveryDockerdKeyHasAStatus is the table of dockerd's daemon.json keys: each is implemented (it loads
// and lands in Config) or refused naming the key and why.
func TestEveryDockerdKeyHasAStatus(t *testing.T) {
	known := KnownKeys()
	seen := map[string]bool{}
	for _, key := range DockerdKeys {
		seen[key] = true
		t.Run(key, func(t *testing.T) {
			if impl, ok := implementedKeys[key]; ok {
				assert.Assert(t, known[key], "implemented key has no Config field")
				cfg := New()
				body := `{"` + key + `": ` + impl.value
				if key == "default-runtime" {
					body += `, "runtimes": {"crun": {"path": "/usr/bin/crun"}}`
				}
				p := writeFile(t, body+"}")
				assert.NilError(t, LoadFile(cfg, p, true, nil))
				assert.NilError(t, cfg.Validate())
				assert.Check(t, impl.check(cfg), "value of %s not in Config", key)
				return
			}
			u, ok := UnsupportedOption(key)
			if !ok && known[key] {
				// Implemented by another area (networking, security) since this table was written.
				return
			}
			assert.Assert(t, ok, "dockerd key %q is neither implemented nor refused", key)
			err := LoadFile(New(), writeFile(t, `{"`+key+`": "something-else"}`), true, nil)
			assert.ErrorContains(t, err, "berthd does not support the following directives: "+key+" (")
			var ue *UnsupportedError
			assert.Check(t, errors.As(err, &ue))
			for _, h := range u.Harmless {
				assert.NilError(t, LoadFile(New(), writeFile(t, `{"`+key+`": `+h+`}`), true, nil), "harmless value %s", h)
			}
		})
	}
	for k := range implementedKeys {
		assert.Check(t, seen[k], "%s is not in DockerdKeys", k)
	}
	for _, l := range [][]Unsupported{unsupported, pendingUnsupported} {
		for _, u := range l {
			assert.Check(t, seen[u.Key], "refused key %s is not a dockerd key", u.Key)
		}
	}
}

func TestUnsupportedListsEveryOffendingKeySorted(t *testing.T) {
	p := writeFile(t, `{"storage-opts": ["dm.basesize=20G"], "rootless": true, "rootless-not": 1}`)
	err := LoadFile(New(), p, true, nil)
	assert.ErrorContains(t, err, "don't match any configuration option: rootless-not", "unknown keys are reported first")
	p = writeFile(t, `{"storage-opts": ["dm.basesize=20G"], "rootless": true, "cri-containerd": false}`)
	err = LoadFile(New(), p, true, nil)
	assert.ErrorContains(t, err, "berthd does not support the following directives: rootless (rootless mode (berthd runs as root)); storage-opts (")
	assert.Check(t, !is.Contains(err.Error(), "cri-containerd")().Success(), "a harmless value is accepted")
}

func TestFeatures(t *testing.T) {
	assert.NilError(t, LoadFile(New(), writeFile(t, `{"features": {"buildkit": false, "containerd-snapshotter": true}}`), true, nil))
	for _, v := range []string{"true", "false"} {
		cfg := New()
		assert.NilError(t, LoadFile(cfg, writeFile(t, `{"features": {"buildkit": `+v+`}}`), true, nil))
		assert.NilError(t, cfg.Validate())
		assert.Check(t, is.Equal(cfg.Features.BuildKitEnabled(), v == "true"))
	}
	assert.Check(t, New().Features.BuildKitEnabled(), "BuildKit is on by default, as in dockerd")
	cfg := New()
	assert.NilError(t, LoadFile(cfg, writeFile(t, `{"features": {"containerd-snapshotter": false}}`), true, nil))
	assert.ErrorContains(t, cfg.Validate(), "features: berthd does not support containerd-snapshotter=false")
}

func TestAdminValidation(t *testing.T) {
	for _, tc := range []struct{ body, err string }{
		{`{"exec-opts": ["native.cgroupdriver=foo"]}`, "native.cgroupdriver option foo not supported"},
		{`{"exec-opts": ["native.umask=normal"]}`, `berthd does not support the exec-opt "native.umask"`},
		{`{"default-runtime": "nosuch"}`, "specified default runtime 'nosuch' does not exist"},
		{`{"runtimes": {"runc": {"path": "/x"}}}`, "runtime name 'runc' is reserved"},
		{`{"runtimes": {"k": {"path": "/x", "runtimeArgs": ["--debug"]}}}`, "does not support runtimeArgs"},
		{`{"runtimes": {"k": {"runtimeType": "io.containerd.kata.v2"}}}`, `does not support runtimeType "io.containerd.kata.v2"`},
		{`{"registry-mirrors": ["ftp://m"]}`, `invalid mirror: unsupported scheme "ftp"`},
		{`{"registry-mirrors": ["https://m/path"]}`, "invalid mirror: path"},
		{`{"default-cgroupns-mode": "shared"}`, "default cgroup namespace mode (shared) is invalid"},
		{`{"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 10, "Hard": 5}}}`, "soft limit must be less than or equal to hard limit"},
		{`{"max-concurrent-downloads": -1}`, "invalid max concurrent downloads: -1"},
		{`{"log-format": "xml"}`, "invalid log format: xml"},
		{`{"oom-score-adjust": 2000}`, "invalid oom-score-adjust 2000"},
		{`{"default-shm-size": "lots"}`, "invalid size: 'lots'"},
	} {
		cfg := New()
		err := LoadFile(cfg, writeFile(t, tc.body), true, nil)
		if err == nil {
			err = cfg.Validate()
		}
		assert.Check(t, is.ErrorContains(err, tc.err), tc.body)
	}
}

func TestParseUlimitAndMirror(t *testing.T) {
	u, err := ParseUlimit("nofile=1024:2048")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(u.Name, "nofile"))
	assert.Check(t, u.Soft == 1024 && u.Hard == 2048)
	_, err = ParseUlimit("bogus=1")
	assert.Check(t, is.ErrorContains(err, "invalid ulimit type: bogus"))
	m, err := ValidateMirror("http://127.0.0.1:5001")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(m, "http://127.0.0.1:5001/"))
}

func TestDockerdKeysSortedAndUnique(t *testing.T) {
	assert.Check(t, sort.StringsAreSorted(DockerdKeys))
	seen := map[string]bool{}
	for _, k := range DockerdKeys {
		assert.Check(t, !seen[k], "duplicate %s", k)
		seen[k] = true
	}
}

func TestNeedsRestart(t *testing.T) {
	cur, next := New(), New()
	next.Debug = true
	next.RegistryMirrors = []string{"https://m"}
	next.LogConfig.Config = map[string]string{"max-size": "1m"}
	assert.Check(t, is.DeepEqual(NeedsRestart(cur, next), []string{"log-opts"}), "registry-mirrors reload")
	assert.Check(t, is.Len(NeedsRestart(cur, New()), 0))
}

func TestContribExampleLoads(t *testing.T) {
	cfg := New()
	assert.NilError(t, LoadFile(cfg, "../../contrib/daemon.json.example", true, nil))
	assert.NilError(t, cfg.Validate())
	assert.Check(t, is.Equal(cfg.LogConfig.Config["max-file"], "3"))
}
