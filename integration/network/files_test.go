package network

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestHostsResolvConfAndLinks(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "db", "--expose", "5432", "-e", "PGUSER=x", "busybox", "sleep", "300")
	dbIP := ipOf(t, d, "db", "bridge")
	dbHost := mustDocker(t, d, "inspect", "-f", "{{.Config.Hostname}}", "db")

	mustDocker(t, d, "run", "-d", "--name", "web", "--link", "db:my-db", "--hostname", "web", "--domainname", "ex.org",
		"--add-host", "gw:host-gateway", "--add-host", "fixed:10.1.2.3", "busybox", "sleep", "300")
	webIP := ipOf(t, d, "web", "bridge")
	hosts := mustDocker(t, d, "exec", "web", "cat", "/etc/hosts") + "\n"
	assert.Check(t, is.Contains(hosts, "127.0.0.1\tlocalhost\n"))
	assert.Check(t, is.Contains(hosts, "172.17.0.1\tgw\n"))
	assert.Check(t, is.Contains(hosts, "10.1.2.3\tfixed\n"))
	assert.Check(t, is.Contains(hosts, dbIP+"\tmy-db "+dbHost+" db\n"))
	assert.Check(t, is.Contains(hosts, webIP+"\tweb.ex.org web\n"))
	// The main process has the links' environment.
	env := mustDocker(t, d, "run", "--rm", "--name", "linker", "--link", "db:my-db", "busybox", "env") + "\n"
	for _, want := range []string{"MY_DB_PORT=tcp://" + dbIP + ":5432", "MY_DB_PORT_5432_TCP_ADDR=" + dbIP, "MY_DB_NAME=/linker/my-db", "MY_DB_ENV_PGUSER=x"} {
		assert.Check(t, is.Contains(env, want+"\n"))
	}
	out := mustDocker(t, d, "exec", "web", "ping", "-c", "1", "-W", "2", "my-db")
	assert.Check(t, is.Contains(out, dbIP))

	// A link to a container outside the default bridge is refused.
	mustDocker(t, d, "network", "create", "app")
	mustDocker(t, d, "run", "-d", "--name", "onapp", "--network", "app", "busybox", "sleep", "300")
	res := d.Docker(t, "run", "--rm", "--link", "onapp:x", "busybox", "true")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "Cannot link to /onapp, as it does not belong to the default network"))

	res = d.Docker(t, "create", "--network", "host", "--link", "db:x", "busybox")
	assert.Check(t, is.Contains(res.Stderr, "conflicting options: host type networking can't be used with links"))

	// resolv.conf: default bridge keeps non-loopback host servers (legacy), a user network the embedded one.
	legacy := mustDocker(t, d, "exec", "web", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(legacy, "(legacy)"))
	assert.Check(t, !strings.Contains(legacy, "nameserver 127."))
	internal := mustDocker(t, d, "exec", "onapp", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(internal, "nameserver 127.0.0.11\n"))
	assert.Check(t, is.Contains(internal, "(internal resolver)"))
	opts := mustDocker(t, d, "run", "--rm", "--dns", "10.0.0.9", "--dns-search", "corp", "--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf")
	assert.Check(t, is.Contains(opts, "nameserver 10.0.0.9\nsearch corp\noptions ndots:2\n"))
	assert.Check(t, is.Contains(opts, "# Overrides: [nameservers search options]"))
}

func TestNetworkContainerMode(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "network", "create", "app")
	mustDocker(t, d, "run", "-d", "--name", "owner", "--network", "app", "--hostname", "own", "--add-host", "x:10.0.0.1", "busybox", "sleep", "300")
	mustDocker(t, d, "run", "-d", "--name", "peer", "--network", "app", "busybox", "sleep", "300")
	ownerIP := ipOf(t, d, "owner", "app")
	out := mustDocker(t, d, "run", "--rm", "--network", "container:owner", "busybox", "sh", "-c", "hostname; ip -4 addr show eth0; cat /etc/hosts /etc/resolv.conf; ping -c1 -W2 peer")
	assert.Check(t, is.Contains(out, "own\n"))
	assert.Check(t, is.Contains(out, "inet "+ownerIP+"/"))
	assert.Check(t, is.Contains(out, "10.0.0.1\tx\n"))
	assert.Check(t, is.Contains(out, "nameserver 127.0.0.11\n"))
	assert.Check(t, is.Contains(out, "1 packets received"))
	for args, msg := range map[string]string{
		"--hostname h":         "conflicting options: hostname and the network mode",
		"--dns 1.1.1.1":        "conflicting options: dns and the network mode",
		"--add-host a:1.2.3.4": "conflicting options: custom host-to-IP mapping and the network mode",
		"-p 80":                "conflicting options: port publishing and the container type network mode",
		"--link peer":          "conflicting options: container type network can't be used with links",
	} {
		res := d.Docker(t, append(append([]string{"create", "--network", "container:owner"}, strings.Fields(args)...), "busybox")...)
		assert.Check(t, res.ExitCode != 0, args)
		assert.Check(t, is.Contains(res.Stderr, msg), args)
	}
	mustDocker(t, d, "create", "--name", "late", "--network", "container:owner", "busybox", "true")
	mustDocker(t, d, "stop", "-t", "0", "owner")
	res := d.Docker(t, "start", "late")
	assert.Check(t, res.ExitCode != 0)
	assert.Check(t, is.Contains(res.Stderr, "cannot join network of a non running container"))
	mustDocker(t, d, "create", "--name", "orphan", "--network", "container:nope", "busybox")
	res = d.Docker(t, "start", "orphan")
	assert.Check(t, is.Contains(res.Stderr, "No such container: nope"))
}
