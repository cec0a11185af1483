package network

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/miekg/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const composeFile = `version: "2.4"
services:
  web:
    image: busybox
    command: sh -c "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 80 -h /w"
  client:
    image: busybox
    command: sleep 300
volumes:
  data: {}
`

// compose runs Debian's docker-compose 1.29 against d in the project directory dir.
func compose(t *testing.T, d *daemon.Daemon, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"-p", "dnsproj"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"), "COMPOSE_INTERACTIVE_NO_CLI=1")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "docker-compose %v: %s", args, out)
	return string(out)
}

func TestCompose129ServiceNames(t *testing.T) {
	d := newDaemon(t)
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(composeFile), 0o644))
	compose(t, d, dir, "up", "-d")
	webHost := mustDocker(t, d, "inspect", "-f", "{{.Config.Hostname}}", "dnsproj_web_1")
	got := retry(t, "client reaches web by service name", func() (string, bool) {
		// busybox's wget crashes in the static test image; nc resolves the service name the same way.
		res := d.Docker(t, "exec", "dnsproj_client_1", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 web 80`)
		return res.Combined(), res.ExitCode == 0 && strings.Contains(res.Stdout, webHost)
	})
	assert.Check(t, is.Contains(got, "200 OK"))

	compose(t, d, dir, "up", "-d", "--scale", "web=2")
	ns := sandboxOf(t, d, "dnsproj_client_1")
	want := []string{ipOf(t, d, "dnsproj_web_1", "dnsproj_default"), ipOf(t, d, "dnsproj_web_2", "dnsproj_default")}
	sort.Strings(want)
	ans := answers(query(t, ns, "udp", "web", dns.TypeA))
	sort.Strings(ans)
	assert.Check(t, is.DeepEqual(ans, want))
	// Each replica also answers by its container name.
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "udp", "dnsproj_web_2", dns.TypeA)), []string{ipOf(t, d, "dnsproj_web_2", "dnsproj_default")}))

	compose(t, d, dir, "down", "-v")
	assert.Check(t, is.Equal(mustDocker(t, d, "ps", "-aq"), ""))
	assert.Check(t, !strings.Contains(mustDocker(t, d, "network", "ls", "--format", "{{.Name}}"), "dnsproj_default"))
}
