package main

import (
	"testing"

	"github.com/berthd/berthd/daemon/config"
	"github.com/spf13/pflag"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestExplicitKeysAreDaemonJSONKeys(t *testing.T) {
	o := newOptions()
	assert.NilError(t, o.parse([]string{"-H", "unix:///x.sock", "--label", "a=b", "--insecure-registry", "r:5000",
		"--containerd-plugins-namespace", "p", "--plugins-spec-dir", "/s", "-D", "--config-file", "/c.json"}))
	explicit := o.explicit()
	known := config.KnownKeys()
	for k := range explicit {
		assert.Check(t, known[k], "flag key %q is not a daemon.json key, so a conflict with the file would go unnoticed", k)
	}
	for _, k := range []string{"hosts", "labels", "insecure-registries", "containerd-plugin-namespace", "plugins-spec-dirs", "debug"} {
		_, ok := explicit[k]
		assert.Check(t, ok, k)
	}
	_, ok := explicit["config-file"]
	assert.Check(t, !ok, "--config-file is not a daemon.json key")
	assert.Check(t, is.DeepEqual(o.cfg.PluginsSpecDirs, []string{"/s"}), "an explicit spec dir replaces the defaults")
}

func TestEveryFlagMapsToAKnownKey(t *testing.T) {
	o := newOptions()
	known := config.KnownKeys()
	o.flags.VisitAll(func(f *pflag.Flag) {
		switch f.Name {
		case "config-file", "validate", "version":
			return
		}
		key := flagKey(f.Name)
		if _, refused := f.Value.(*refusedValue); refused {
			_, ok := config.UnsupportedOption(key)
			assert.Check(t, ok, "refused flag --%s has no refused daemon.json key %q", f.Name, key)
			return
		}
		assert.Check(t, known[key], "flag --%s has no daemon.json key %q", f.Name, key)
	})
}

func TestTLSTriState(t *testing.T) {
	o := newOptions()
	assert.NilError(t, o.parse(nil))
	assert.Check(t, o.cfg.TLS == nil, "not given is different from false")
	o = newOptions()
	assert.NilError(t, o.parse([]string{"--tls=false"}))
	assert.Assert(t, o.cfg.TLS != nil)
	assert.Check(t, !*o.cfg.TLS)
	o = newOptions()
	assert.ErrorContains(t, o.parse([]string{"extra"}), "accepts no arguments")
}
