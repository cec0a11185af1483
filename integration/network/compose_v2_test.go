package network

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berthd/berthd/hack/testenv"
	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/miekg/dns"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// composeV2File is composeFile's project for compose v2: the web port is published on an ephemeral host
// port so that two replicas can run, and web says when it starts (for logs).
const composeV2File = `services:
  web:
    image: busybox
    command: sh -c "mkdir -p /w && hostname > /w/index.html && echo web-started && exec httpd -f -p 80 -h /w"
    ports: ["80"]
    volumes: ["data:/data"]
  client:
    image: busybox
    command: sleep 300
volumes:
  data: {}
`

// composeV2 holds a private DOCKER_CONFIG with compose v2 (hack/install-deps.sh builds it from its Go
// module as docker-compose-v2) installed in it as the CLI plugin, as Docker's packages install it.
type composeV2 struct {
	d         *daemon.Daemon
	dir, conf string
}

func newComposeV2(t *testing.T, d *daemon.Daemon) *composeV2 {
	t.Helper()
	bin := testenv.NeedCommand(t, "docker-compose-v2", "none: built by hack/install-deps.sh")
	conf := filepath.Join(d.Dir, "cli-v2")
	assert.NilError(t, os.MkdirAll(filepath.Join(conf, "cli-plugins"), 0o755))
	assert.NilError(t, os.Symlink(bin, filepath.Join(conf, "cli-plugins", "docker-compose")))
	c := &composeV2{d: d, dir: t.TempDir(), conf: conf}
	assert.NilError(t, os.WriteFile(filepath.Join(c.dir, "compose.yaml"), []byte(composeV2File), 0o644))
	return c
}

// run is `docker compose -p dnsv2 args...` in the project directory.
func (c *composeV2) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"compose", "-p", "dnsv2"}, args...)...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+c.d.Host(), "DOCKER_CONFIG="+c.conf, "COMPOSE_PROGRESS=plain", "COMPOSE_MENU=false")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "docker compose %v: %s", args, out)
	return string(out)
}

// webReachable checks the service name from the client container and the published port from berthd's
// namespace (where a program on dockerd's host would be).
func (c *composeV2) webReachable(t *testing.T) {
	t.Helper()
	retry(t, "client reaches web by service name", func() (string, bool) {
		res := c.d.Docker(t, "exec", "dnsv2-client-1", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 web 80`)
		return res.Combined(), res.ExitCode == 0 && strings.Contains(res.Stdout, "200 OK")
	})
	port := strings.TrimSpace(c.run(t, "port", "web", "80"))
	_, p, ok := strings.Cut(port, ":")
	assert.Assert(t, ok, port)
	webHost := mustDocker(t, c.d, "inspect", "-f", "{{.Config.Hostname}}", "dnsv2-web-1")
	retry(t, "published port answers", func() (string, bool) {
		page, err := fetchIn(c.d.NetNS, "127.0.0.1:"+p)
		if err != nil {
			return err.Error(), false
		}
		return page, strings.Contains(page, webHost)
	})
}

func TestComposeV2ServiceNames(t *testing.T) {
	d := newDaemon(t)
	c := newComposeV2(t, d)
	c.run(t, "up", "-d")
	c.webReachable(t)

	ps := c.run(t, "ps", "--format", "{{.Name}} {{.Service}} {{.State}}")
	assert.Check(t, is.Contains(ps, "dnsv2-web-1 web running"))
	assert.Check(t, is.Contains(ps, "dnsv2-client-1 client running"))
	assert.Check(t, is.Contains(c.run(t, "logs", "web"), "web-started"))
	assert.Check(t, is.Equal(strings.TrimSpace(c.run(t, "exec", "-T", "web", "cat", "/w/index.html")),
		mustDocker(t, d, "inspect", "-f", "{{.Config.Hostname}}", "dnsv2-web-1")))
	// A one-off container joins the project network and resolves the service too.
	out := c.run(t, "run", "--rm", "-T", "client", "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 web 80`)
	assert.Check(t, is.Contains(out, "200 OK"))

	c.run(t, "up", "-d", "--scale", "web=2")
	ns := sandboxOf(t, d, "dnsv2-client-1")
	want := []string{ipOf(t, d, "dnsv2-web-1", "dnsv2_default"), ipOf(t, d, "dnsv2-web-2", "dnsv2_default")}
	sort.Strings(want)
	ans := answers(query(t, ns, "udp", "web", dns.TypeA))
	sort.Strings(ans)
	assert.Check(t, is.DeepEqual(ans, want))
	assert.Check(t, is.DeepEqual(answers(query(t, ns, "udp", "dnsv2-web-2", dns.TypeA)), []string{ipOf(t, d, "dnsv2-web-2", "dnsv2_default")}))

	c.run(t, "down", "-v")
	assert.Check(t, is.Equal(mustDocker(t, d, "ps", "-aq"), ""))
	assert.Check(t, !strings.Contains(mustDocker(t, d, "network", "ls", "--format", "{{.Name}}"), "dnsv2_default"))
	assert.Check(t, !strings.Contains(mustDocker(t, d, "volume", "ls", "--format", "{{.Name}}"), "dnsv2_data"))

	// The project comes back from nothing: network, volume and names are made again.
	c.run(t, "up", "-d")
	c.webReachable(t)
	c.run(t, "down", "-v")
}
