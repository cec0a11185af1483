// Package ecosystem holds end-to-end tests of third-party Go tooling built on the Docker API
// (testcontainers-go) against a real berthd. It is a package of its own so that those libraries stay out
// of every other test binary.
package ecosystem

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/mkimage"
	"github.com/berthd/berthd/integration/internal/daemon"
	"github.com/berthd/berthd/integration/internal/netnstest"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// fetchInNS sends an HTTP/1.0 GET to addr from a socket created in the network namespace nsPath. berthd
// runs in a namespace of its own, where its published ports live; the address testcontainers hands out
// ("localhost":mapped port) is valid there, as it is on dockerd's host, so only the socket moves there and
// the rest of the test (and testcontainers) stays in the test's namespace, talking to the API socket.
func fetchInNS(nsPath, addr string) (string, error) {
	return netnstest.Fetch(nsPath, addr, 4*time.Second)
}

func TestTestcontainersGo(t *testing.T) {
	d := daemon.New(t)
	d.Start(t)
	img, err := mkimage.BusyboxImage("busybox:latest")
	assert.NilError(t, err)
	var b bytes.Buffer
	assert.NilError(t, mkimage.WriteSave(&b, []mkimage.Image{img}))
	res := d.DockerStdin(t, b.Bytes(), "load")
	assert.Equal(t, res.ExitCode, 0, res.Combined())

	// testcontainers reads these when it first builds its provider; the reaper (ryuk) is an image
	// pulled from Docker Hub, which the tests never reach.
	t.Setenv("DOCKER_HOST", d.Host())
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "")
	t.Setenv("HOME", t.TempDir()) // no ~/.testcontainers.properties or ~/.docker/config.json of the host's

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        "busybox:latest",
			ExposedPorts: []string{"80/tcp"},
			Cmd:          []string{"sh", "-c", "mkdir -p /w && echo hello-tc > /w/index.html && echo httpd-ready && exec httpd -f -p 80 -h /w"},
			WaitingFor:   wait.ForLog("httpd-ready").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
	assert.NilError(t, err)
	terminated := false
	defer func() {
		if !terminated {
			_ = ctr.Terminate(context.Background())
		}
	}()

	host, err := ctr.Host(ctx)
	assert.NilError(t, err)
	port, err := ctr.MappedPort(ctx, "80/tcp")
	assert.NilError(t, err)
	addr := net.JoinHostPort(host, port.Port())
	var page string
	for i := 0; i < 50; i++ {
		if page, err = fetchInNS(d.NetNS, addr); err == nil && strings.Contains(page, "hello-tc") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	assert.NilError(t, err)
	assert.Check(t, is.Contains(page, "200 OK"))
	assert.Check(t, is.Contains(page, "hello-tc"))

	code, out, err := ctr.Exec(ctx, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, tcexec.Multiplexed())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(code, 3))
	got, err := io.ReadAll(out)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(got), "out"))
	assert.Check(t, is.Contains(string(got), "err"))

	assert.NilError(t, ctr.CopyToContainer(ctx, []byte("copied in\n"), "/w/sub/new.txt", 0o640))
	code, out, err = ctr.Exec(ctx, []string{"stat", "-c", "%a %s", "/w/sub/new.txt"}, tcexec.Multiplexed())
	assert.NilError(t, err)
	assert.Check(t, is.Equal(code, 0))
	got, _ = io.ReadAll(out)
	assert.Check(t, is.Equal(strings.TrimSpace(string(got)), "640 10"))
	rc, err := ctr.CopyFileFromContainer(ctx, "/w/index.html")
	assert.NilError(t, err)
	got, err = io.ReadAll(rc)
	rc.Close()
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(got), "hello-tc\n"))
	rc, err = ctr.CopyFileFromContainer(ctx, "/w/sub/new.txt")
	assert.NilError(t, err)
	got, _ = io.ReadAll(rc)
	rc.Close()
	assert.Check(t, is.Equal(string(got), "copied in\n"))

	id := ctr.GetContainerID()
	assert.NilError(t, ctr.Terminate(ctx))
	terminated = true
	cli, err := client.NewClientWithOpts(client.WithHost(d.Host()), client.WithAPIVersionNegotiation())
	assert.NilError(t, err)
	defer cli.Close()
	_, err = cli.ContainerInspect(ctx, id)
	assert.Check(t, client.IsErrNotFound(err), "container still there after Terminate: %v", err)
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	assert.NilError(t, err)
	assert.Check(t, is.Len(list, 0))
}
