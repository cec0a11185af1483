package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadFile: any daemon.json is loaded and validated without panicking, and a refused key is never
// silently dropped from the error.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"log-opts": {"max-size": "10m"}}`, `{"default-shm-size": "64M"}`, `{"default-shm-size": 1}`,
		`{"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1, "Hard": 2}}}`, `{"features": {"buildkit": true}}`,
		`{"runtimes": {"x": {"path": "/x"}}, "default-runtime": "x"}`, `{"registry-mirrors": ["http://[::1]:5000"]}`,
		`{"exec-opts": ["native.cgroupdriver="]}`, `{"storage-opts": null}`, "\xEF\xBB\xBF{}",
		`{"builder": {"gc": {"enabled": true, "defaultKeepStorage": "10GB", "policy": [{"keepStorage": "1GB", "filter": ["unused-for=24h"]}, {"all": true, "filter": {"type": {"regular": true}}}]}}}`,
		`{"builder": {"entitlements": {"network-host": false, "security-insecure": true}}}`, `{"builder": {"gc": {"policy": [{"filter": 3}]}}}`,
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(dir, "daemon.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := New()
		if err := LoadFile(cfg, p, true, nil); err == nil {
			_ = cfg.Validate()
		}
	})
}

// FuzzParseUlimit: --default-ulimit values never panic, and a parsed one is consistent.
func FuzzParseUlimit(f *testing.F) {
	for _, s := range []string{"nofile=1024:2048", "nproc=5", "core=-1", "x=1", "nofile=2:1", "=", "nofile=:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		u, err := ParseUlimit(v)
		if err == nil && (u.Soft > u.Hard || !validUlimit[u.Name]) {
			t.Fatalf("%q parsed to %+v", v, u)
		}
		var m MemBytes
		_ = m.Set(v)
	})
}
