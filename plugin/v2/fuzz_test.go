package v2

import (
	"encoding/json"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	types "github.com/berthd/berthd/api/types/plugin"
)

// FuzzConfig decodes a manifest as `docker plugin create` does, validates it and, when valid, builds
// settings, privileges and a spec: nothing may panic, and a valid manifest always yields a spec.
func FuzzConfig(f *testing.F) {
	b, _ := json.Marshal(validConfig())
	f.Add(string(b), "DEBUG=1")
	f.Add(`{"interface":{"types":["docker.volumedriver/1.0"],"socket":"p.sock"},"entrypoint":["/p"],"propagatedmount":"/data"}`, "args=a b")
	f.Add(`{"Interface":{"Types":["docker.x/1"],"Socket":"s"},"Entrypoint":["/p"],"Mounts":[{"Name":"m","Settable":["source"],"Destination":"/m"}]}`, "m.source=/x")
	f.Add(`{"Interface":{"Types":["."]}}`, "=")
	f.Add(`null`, "")
	f.Fuzz(func(t *testing.T, manifest, setting string) {
		var cfg types.Config
		if json.Unmarshal([]byte(manifest), &cfg) != nil {
			return
		}
		if ValidateConfig(&cfg) != nil {
			return
		}
		p := NewFromConfig(strings.Repeat("a", 64), "p:latest", "", cfg, "/r/p")
		_ = Privileges(cfg)
		_ = p.Capabilities()
		_ = p.Set(strings.Split(setting, "\n"))
		_ = p.ScopedPath(setting)
		s, err := p.InitSpec(SpecOptions{SocketDir: "/s", Device: func(path string) (specs.LinuxDevice, error) {
			return specs.LinuxDevice{Path: path, Type: "c"}, nil
		}})
		if err == nil && (s == nil || len(s.Process.Args) == 0) {
			t.Fatalf("valid manifest gave an empty spec: %+v", s)
		}
	})
}
