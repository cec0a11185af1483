package container

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	containertypes "github.com/docker/docker/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestRunBasics(t *testing.T) {
	d := newDaemon(t)

	res := d.Docker(t, "run", "--rm", "busybox", "echo", "hi")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Equal(t, res.Stdout, "hi\n")

	res = d.Docker(t, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	assert.Equal(t, res.ExitCode, 3, res.Combined())
	assert.Equal(t, res.Stdout, "out\n")
	assert.Equal(t, res.Stderr, "err\n")

	out := mustDocker(t, d, "run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", "--hostname", "hh",
		"busybox", "sh", "-c", "echo $FOO; pwd; id -u; id -g; hostname")
	assert.Equal(t, out, "bar\n/tmp\n1000\n1000\nhh")

	out = mustDocker(t, d, "run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint")
	assert.Equal(t, out, "from entrypoint")

	// The default bridge network gives eth0 beside loopback; none has loopback only.
	out = mustDocker(t, d, "run", "--rm", "busybox", "ls", "/sys/class/net")
	assert.Equal(t, out, "eth0\nlo")
	out = mustDocker(t, d, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
	assert.Equal(t, out, "lo")

	// Host network: the host's interfaces and hostname.
	host, _ := os.Hostname()
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--network", "host", "busybox", "hostname"), host)
	// (404 as dockerd; through the CLI that would mean "pull and retry", so asked through the API.)
	_, err := d.Client(t).ContainerCreate(context.Background(), &containertypes.Config{Image: "busybox"},
		&containertypes.HostConfig{NetworkMode: "nosuchnet"}, nil, nil, "")
	assert.ErrorContains(t, err, "network nosuchnet not found")

	// Not found command: 127 as dockerd.
	res = d.Docker(t, "run", "--rm", "busybox", "nonexistent-cmd")
	assert.Equal(t, res.ExitCode, 127, res.Combined())

	// Nothing left behind.
	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")
}

func TestLifecycle(t *testing.T) {
	d := newDaemon(t)
	id := mustDocker(t, d, "run", "-d", "--name", "top", "--label", "a=b", "busybox", "sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done")
	assert.Assert(t, len(id) == 64)

	out := mustDocker(t, d, "ps", "--format", "{{.Names}} {{.Status}}")
	assert.Assert(t, strings.HasPrefix(out, "top Up"), out)
	out = mustDocker(t, d, "ps", "--filter", "label=a=b", "-q")
	assert.Equal(t, out, id[:12])
	out = mustDocker(t, d, "ps", "--filter", "label=a=c", "-q")
	assert.Equal(t, out, "")
	out = mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.Config.Labels.a}} {{.Name}}", "top")
	assert.Equal(t, out, "running b /top")

	waitFor(t, 5*time.Second, "log line", func() bool { return d.Docker(t, "logs", "top").Stdout == "started\n" })

	res := d.Docker(t, "exec", "top", "sh", "-c", "echo in-exec; exit 5")
	assert.Equal(t, res.ExitCode, 5)
	assert.Equal(t, res.Stdout, "in-exec\n")
	res = d.DockerStdin(t, []byte("piped\n"), "exec", "-i", "top", "cat")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Equal(t, res.Stdout, "piped\n")
	out = mustDocker(t, d, "exec", "-u", "1000", "-e", "X=1", "-w", "/etc", "top", "sh", "-c", "echo $X; id -u; pwd")
	assert.Equal(t, out, "1\n1000\n/etc")

	res = d.Docker(t, "rm", "top")
	assert.Assert(t, res.ExitCode != 0)
	assert.Assert(t, is.Contains(res.Stderr, "stop the container before removing or force remove"))

	mustDocker(t, d, "stop", "top")
	out = mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "top")
	assert.Equal(t, out, "exited 0")
	assert.Equal(t, mustDocker(t, d, "ps", "-q"), "")

	mustDocker(t, d, "start", "top")
	mustDocker(t, d, "restart", "-t", "1", "top")
	mustDocker(t, d, "kill", "top")
	out = mustDocker(t, d, "wait", "top")
	assert.Equal(t, out, "137")
	mustDocker(t, d, "rename", "top", "top2")
	res = d.Docker(t, "create", "--name", "top2", "busybox")
	assert.Assert(t, is.Contains(res.Stderr, "is already in use"))
	mustDocker(t, d, "rm", "top2")
	res = d.Docker(t, "inspect", "top2")
	assert.Assert(t, is.Contains(res.Stderr, "No such"))

	// create + start -a.
	mustDocker(t, d, "create", "--name", "c1", "busybox", "echo", "created")
	out = mustDocker(t, d, "start", "-a", "c1")
	assert.Equal(t, out, "created")
	mustDocker(t, d, "rm", "-f", "c1")
}

func TestStdinAndTTY(t *testing.T) {
	d := newDaemon(t)
	res := d.DockerStdin(t, []byte("hello\nworld\n"), "run", "--rm", "-i", "busybox", "cat")
	assert.Equal(t, res.ExitCode, 0, res.Combined())
	assert.Equal(t, res.Stdout, "hello\nworld\n")

	// TTY through the moby client: raw stream, no multiplexing.
	c := d.Client(t)
	ctx := context.Background()
	cr, err := c.ContainerCreate(ctx, &containertypes.Config{Image: "busybox", Tty: true, Cmd: []string{"sh", "-c", "tty; echo done"}}, nil, nil, nil, "")
	assert.NilError(t, err)
	hj, err := c.ContainerAttach(ctx, cr.ID, containertypes.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	assert.NilError(t, err)
	defer hj.Close()
	wait, errc := c.ContainerWait(ctx, cr.ID, containertypes.WaitConditionNextExit)
	assert.NilError(t, c.ContainerStart(ctx, cr.ID, containertypes.StartOptions{}))
	b, _ := io.ReadAll(hj.Reader)
	assert.Assert(t, is.Contains(string(b), "/dev/pts/0"))
	assert.Assert(t, is.Contains(string(b), "done"))
	select {
	case st := <-wait:
		assert.Equal(t, st.StatusCode, int64(0))
	case err := <-errc:
		t.Fatal(err)
	}
}

func TestLogsFollow(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "lf1", "busybox", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done")
	res := d.Docker(t, "logs", "-f", "lf1")
	assert.Equal(t, res.Stdout, "line1\nline2\nline3\n")
	assert.Equal(t, mustDocker(t, d, "logs", "--tail", "1", "lf1"), "line3")
	out := mustDocker(t, d, "logs", "-t", "--tail", "1", "lf1")
	assert.Assert(t, strings.HasSuffix(out, "Z line3"), out)
	out = mustDocker(t, d, "logs", "--since", "2100-01-01T00:00:00Z", "lf1")
	assert.Equal(t, out, "")

	// Follow through the moby client ends when the container exits.
	c := d.Client(t)
	mustDocker(t, d, "run", "-d", "--name", "lf2", "busybox", "sh", "-c", "sleep 0.5; echo late")
	rc, err := c.ContainerLogs(context.Background(), "lf2", containertypes.LogsOptions{ShowStdout: true, Follow: true})
	assert.NilError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(bufio.NewReader(rc))
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(string(b), "late"))
}

func TestBadInput(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	_, err := c.ContainerCreate(ctx, &containertypes.Config{Image: "nosuchimage"}, nil, nil, nil, "")
	assert.ErrorContains(t, err, "No such image: nosuchimage:latest")

	res := d.Docker(t, "run", "--rm", "--mount", "type=bind,source=/nonexistent-berth,target=/x", "busybox", "true")
	assert.Equal(t, res.ExitCode, 125)
	assert.Assert(t, is.Contains(res.Stderr, "bind source path does not exist: /nonexistent-berth"))

	res = d.Docker(t, "run", "--rm", "-m", "1k", "busybox", "true")
	assert.Assert(t, is.Contains(res.Stderr, "Minimum memory limit allowed is 6MB"))

	res = d.Docker(t, "run", "-d", "--restart", "sometimes", "busybox", "true")
	assert.Assert(t, is.Contains(res.Stderr, "invalid restart policy"), res.Combined())

	res = d.Docker(t, "run", "--rm", "-p", "80:80/sctp", "busybox", "true")
	assert.Assert(t, is.Contains(res.Stderr, "invalid proto: sctp"), res.Combined())

	// A failure after some volumes were created releases them: the named one is free again, the
	// anonymous one is gone.
	res = d.Docker(t, "run", "--rm", "-v", "keepme:/a", "-v", "/anon", "--mount", "type=volume,source=bad,target=/b,volume-driver=nosuchdriver", "busybox", "true")
	assert.Assert(t, res.ExitCode != 0)
	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")
	mustDocker(t, d, "volume", "rm", "keepme")

	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")
	assert.Equal(t, mustDocker(t, d, "volume", "ls", "-q"), "")
}
