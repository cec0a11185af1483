// Package volplugin runs hack/plugins/volplugin, a legacy volume plugin that logs every call, for the
// integration tests of packages that need a plugin-backed volume.
package volplugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
)

// Plugin is a running volplugin.
type Plugin struct {
	// Sock is the plugin's socket, volplugin.sock in the daemon's plugin socket dir.
	Sock string
	log  string
	cmd  *exec.Cmd
	once sync.Once
}

// Start builds volplugin and runs it with its socket in d's plugin socket dir (the daemon finds it as
// "volplugin"); it is killed when the test ends.
func Start(t testing.TB, d *daemon.Daemon) *Plugin {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "volplugin")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/berthd/berthd/hack/plugins/volplugin").CombinedOutput()
	if err != nil {
		t.Fatalf("building volplugin: %v: %s", err, out)
	}
	dir := t.TempDir()
	p := &Plugin{Sock: filepath.Join(d.PluginSocketDir, "volplugin.sock"), log: filepath.Join(dir, "calls.log")}
	p.cmd = exec.Command(bin, "-socket", p.Sock, "-root", filepath.Join(dir, "root"), "-log", p.log)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	daemon.WaitFor(t, 10*time.Second, "volplugin socket", func() bool {
		_, err := os.Stat(p.Sock)
		return err == nil
	})
	return p
}

// Kill kills the plugin (once) and waits for it to exit.
func (p *Plugin) Kill() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
}

// Calls counts the plugin's calls of VolumeDriver.method for volume name so far.
func (p *Plugin) Calls(method, name string) int {
	b, _ := os.ReadFile(p.log)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "VolumeDriver."+method+" "+name {
			n++
		}
	}
	return n
}
