package security

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/docker/go-plugins-helpers/authorization"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// policy is a test authorization plugin: it refuses volume creation for names containing "forbidden"
// (read from the request body), filters out volume listings and inspections that mention "secret"
// (from the response body), and records what it was asked.
type policy struct {
	mu   sync.Mutex
	reqs []authorization.Request
	ress []authorization.Request
}

func (p *policy) AuthZReq(r authorization.Request) authorization.Response {
	p.mu.Lock()
	p.reqs = append(p.reqs, r)
	p.mu.Unlock()
	if strings.Contains(r.RequestURI, "/volumes/create") && strings.Contains(string(r.RequestBody), "forbidden") {
		return authorization.Response{Msg: "volume name not allowed by policy"}
	}
	return authorization.Response{Allow: true}
}

func (p *policy) AuthZRes(r authorization.Request) authorization.Response {
	p.mu.Lock()
	p.ress = append(p.ress, r)
	p.mu.Unlock()
	if r.RequestMethod == "GET" && strings.Contains(r.RequestURI, "/volumes") && strings.Contains(string(r.ResponseBody), "secret") {
		return authorization.Response{Msg: "response filtered"}
	}
	return authorization.Response{Allow: true}
}

func (p *policy) requests() []authorization.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]authorization.Request(nil), p.reqs...)
}

// authzPlugin serves a policy as a legacy plugin on a unix socket; stop and start simulate the plugin
// process dying and coming back.
type authzPlugin struct {
	sock string
	pol  *policy
	l    net.Listener
}

func startAuthzPlugin(t *testing.T, sock string) *authzPlugin {
	p := &authzPlugin{sock: sock, pol: &policy{}}
	p.start(t)
	t.Cleanup(p.stop)
	return p
}

func (p *authzPlugin) start(t *testing.T) {
	t.Helper()
	_ = os.Remove(p.sock)
	l, err := net.Listen("unix", p.sock)
	assert.NilError(t, err)
	p.l = l
	h := authorization.NewHandler(p.pol)
	go func() { _ = h.Serve(l) }()
}

func (p *authzPlugin) stop() {
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	_ = os.Remove(p.sock)
}

func TestAuthzLegacyPlugin(t *testing.T) {
	d := daemon.New(t)
	pl := startAuthzPlugin(t, filepath.Join(d.PluginSocketDir, "authz.sock"))
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"authorization-plugins": ["authz"]}`), 0o644))
	d.Start(t)

	// Allowed, and the plugin saw dockerd's request shape.
	d.MustDocker(t, "volume", "create", "--label", "k=v", "ok1")
	var create *authorization.Request
	for _, r := range pl.pol.requests() {
		if r.RequestMethod == "POST" && strings.HasSuffix(r.RequestURI, "/volumes/create") {
			create = &r
		}
	}
	assert.Assert(t, create != nil, "the plugin was not asked about volume create")
	assert.Check(t, strings.HasPrefix(create.RequestURI, "/v1."), create.RequestURI)
	assert.Check(t, is.Contains(string(create.RequestBody), `"Name":"ok1"`))
	assert.Check(t, is.Equal(create.RequestHeaders["Content-Type"], "application/json"))
	assert.Check(t, is.Equal(create.User, ""), "no user over the unix socket")
	var createRes *authorization.Request
	pl.pol.mu.Lock()
	for _, r := range pl.pol.ress {
		if r.RequestMethod == "POST" && strings.HasSuffix(r.RequestURI, "/volumes/create") {
			createRes = &r
		}
	}
	pl.pol.mu.Unlock()
	assert.Assert(t, createRes != nil, "the plugin was not asked about the response")
	assert.Check(t, is.Equal(createRes.ResponseStatusCode, 201))
	assert.Check(t, is.Contains(string(createRes.ResponseBody), `"Name":"ok1"`))

	// Denied by AuthZReq: 403 with dockerd's wording, printed by the CLI; nothing created.
	res := d.Docker(t, "volume", "create", "forbidden1")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "Error response from daemon: authorization denied by plugin authz: volume name not allowed by policy"))
	_, err := d.Client(t).VolumeInspect(context.Background(), "forbidden1")
	assert.Check(t, is.ErrorContains(err, "no such volume"))
	_, err = d.Client(t).VolumeCreate(context.Background(), volumeCreate("forbidden2"))
	assert.Check(t, is.ErrorContains(err, "authorization denied by plugin authz"))
	status, _ := d.Raw(t, "POST", "/volumes/create", `{"Name":"forbidden3"}`)
	assert.Check(t, is.Equal(status, 403))

	// Denied by AuthZRes: the response is filtered out.
	d.MustDocker(t, "volume", "create", "secret1")
	res = d.Docker(t, "volume", "ls")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "authorization denied by plugin authz: response filtered"))
	assert.Check(t, !strings.Contains(res.Stdout, "secret1"))
	res = d.Docker(t, "volume", "inspect", "ok1")
	assert.Check(t, is.Equal(res.ExitCode, 0), res.Combined())

	// The plugin dies: every request is denied (fail closed) and the daemon stays up.
	pl.stop()
	res = d.Docker(t, "volume", "create", "whiledown")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "plugin authz failed with error"))
	status, _ = d.Raw(t, "GET", "/version", "")
	assert.Check(t, is.Equal(status, 500))
	assert.Check(t, syscall.Kill(d.Pid(), 0) == nil, "berthd must stay up")

	// It comes back: allowed again, without restarting the daemon.
	pl.start(t)
	d.MustDocker(t, "volume", "create", "afterrestart")
	res = d.Docker(t, "volume", "inspect", "whiledown")
	assert.Check(t, is.Contains(res.Stderr, "no such volume"), "a request denied while the plugin was down was not run")

	// SIGHUP: a list naming a missing plugin is refused whole (the old list stays) ...
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{"authorization-plugins": ["authz", "nosuchauthz"]}`), 0o644))
	d.Signal(t, syscall.SIGHUP)
	waitLog(t, d, "reload: configuration not applied")
	res = d.Docker(t, "volume", "create", "forbidden4")
	assert.Check(t, is.Contains(res.Stderr, "authorization denied by plugin authz"))
	// ... and an empty one removes the plugin from the chain.
	assert.NilError(t, os.WriteFile(d.ConfigFile, []byte(`{}`), 0o644))
	d.Signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for d.Docker(t, "volume", "create", "forbidden5").ExitCode != 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	d.MustDocker(t, "volume", "inspect", "forbidden5")
}

func TestAuthzPluginMissingAtStart(t *testing.T) {
	d := daemon.New(t)
	err := d.StartWithError("-H", d.Host(), "--authorization-plugin", "nosuchauthz")
	assert.Check(t, err != nil)
	assert.Check(t, is.Contains(d.Log(), "failed to validate authorization plugin"))
	assert.Check(t, is.Contains(d.Log(), "nosuchauthz"))
}

func waitLog(t *testing.T, d *daemon.Daemon, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never showed %q", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
