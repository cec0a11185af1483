package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "daemon.json")
	assert.NilError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestLoadFileMergesOverDefaults(t *testing.T) {
	cfg := New()
	p := writeFile(t, `{"data-root": "/srv/berth", "live-restore": true, "log-driver": "json-file"}`)
	err := LoadFile(cfg, p, true, map[string]string{"debug": "true"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cfg.Root, "/srv/berth"))
	assert.Check(t, cfg.LiveRestore)
	assert.Check(t, is.Equal(cfg.ExecRoot, DefaultExecRoot), "keys absent from the file keep their value")
	assert.Check(t, is.Equal(cfg.LogConfig.Type, "json-file"))
}

func TestLoadFileUnknownKeys(t *testing.T) {
	p := writeFile(t, `{"data-root": "/x", "bogus": 1, "also-bogus": true}`)
	err := LoadFile(New(), p, true, nil)
	assert.ErrorContains(t, err, "the following directives don't match any configuration option: also-bogus, bogus")
	assert.ErrorContains(t, err, p)
}

func TestLoadFileConflictWithFlag(t *testing.T) {
	p := writeFile(t, `{"hosts": ["fd://"]}`)
	err := LoadFile(New(), p, true, map[string]string{"hosts": "[unix:///x.sock]"})
	assert.ErrorContains(t, err, `the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [unix:///x.sock], from file: ["fd://"])`)
}

func TestLoadFileMalformed(t *testing.T) {
	p := writeFile(t, `{"debug": tru`)
	err := LoadFile(New(), p, true, nil)
	assert.ErrorContains(t, err, p)
	assert.ErrorContains(t, err, "invalid character")
}

func TestLoadFileWrongType(t *testing.T) {
	p := writeFile(t, `{"debug": "yes"}`)
	err := LoadFile(New(), p, true, nil)
	assert.ErrorContains(t, err, "cannot unmarshal string")
}

func TestLoadFileMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.json")
	err := LoadFile(New(), p, false, nil)
	assert.NilError(t, err, "a missing default file is fine")
	err = LoadFile(New(), p, true, nil)
	assert.ErrorContains(t, err, "no such file")
}

func TestLoadFileEmptyAndBOM(t *testing.T) {
	cfg := New()
	err := LoadFile(cfg, writeFile(t, "  \n"), true, nil)
	assert.NilError(t, err)
	err = LoadFile(cfg, writeFile(t, "\xEF\xBB\xBF{\"debug\": true}"), true, nil)
	assert.NilError(t, err)
	assert.Check(t, cfg.Debug)

	utf16 := []byte{0xFF, 0xFE}
	for _, r := range `{"log-level":"warn"}` {
		utf16 = append(utf16, byte(r), 0)
	}
	err = LoadFile(cfg, writeFile(t, string(utf16)), true, nil)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(cfg.LogLevel, "warn"))
}

func TestValidate(t *testing.T) {
	tru, fal := true, false
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		err  string
	}{
		{"defaults", func(*Config) {}, ""},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "invalid logging level: loud"},
		{"timeout", func(c *Config) { c.ShutdownTimeout = -2 }, "invalid shutdown-timeout"},
		{"host", func(c *Config) { c.Hosts = []string{"http://x"} }, `invalid daemon host "http://x"`},
		{"label", func(c *Config) { c.Labels = []string{"novalue"} }, "bad attribute format: novalue"},
		{"tls", func(c *Config) { c.TLS, c.TLSVerify = &fal, &tru }, "conflicting options"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New()
			tc.mod(c)
			err := c.Validate()
			if tc.err == "" {
				assert.NilError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.err)
			}
		})
	}
}

func TestKnownKeysMatchTags(t *testing.T) {
	keys := KnownKeys()
	for _, k := range []string{"hosts", "data-root", "exec-root", "pidfile", "containerd", "debug", "log-level", "live-restore", "shutdown-timeout", "tls", "tlsverify"} {
		assert.Check(t, keys[k], k)
	}
	assert.Check(t, keys["log-opts"] && keys["log-driver"], "keys of embedded structs are known")
}

func TestApplyReload(t *testing.T) {
	c := New()
	next := New()
	next.Debug, next.LiveRestore, next.ShutdownTimeout, next.Root = true, true, 30, "/elsewhere"
	attrs := c.ApplyReload(next)
	assert.Check(t, c.Debug && c.LiveRestore)
	assert.Check(t, is.Equal(c.ShutdownTimeout, 30))
	assert.Check(t, is.Equal(c.Root, DefaultDataRoot), "data-root is not reloadable")
	assert.Check(t, is.Equal(attrs["shutdown-timeout"], "30"))
	assert.Check(t, strings.Contains(attrs["labels"], "["))
}
