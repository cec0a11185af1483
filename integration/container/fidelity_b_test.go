package container

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	containertypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/strslice"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestCreateErrorClasses: at create only a missing image is a 404; the CLI takes any other 404 for one,
// prints "Unable to find image" and pulls.
func TestCreateErrorClasses(t *testing.T) {
	d := newDaemon(t)
	for _, args := range [][]string{
		{"--network", "nosuch"},
		{"--volumes-from", "nosuch"},
		{"--link", "nosuch:alias"},
		{"--pid", "container:nosuch"},
		// dockerd itself answers this one with a 404, and its CLI then pulls.
		{"--volume-driver", "nosuchdriver", "-v", "vol:/x"},
	} {
		res := d.Docker(t, append(append([]string{"run", "--rm"}, args...), "busybox", "true")...)
		assert.Equal(t, res.ExitCode, 125, "%v: %s", args, res.Combined())
		assert.Assert(t, !strings.Contains(res.Stderr, "Unable to find image"), "%v: %s", args, res.Stderr)
	}

	c := d.Client(t)
	ctx := context.Background()
	cfg := &containertypes.Config{Image: "busybox", Cmd: strslice.StrSlice{"true"}}
	for _, tc := range []struct {
		hc   containertypes.HostConfig
		want string
	}{
		{containertypes.HostConfig{VolumesFrom: []string{"nosuch"}}, "No such container: nosuch"},
		{containertypes.HostConfig{Links: []string{"nosuch:x"}}, "could not get container for nosuch: No such container: nosuch"},
		{containertypes.HostConfig{PidMode: "container:nosuch"}, "No such container: nosuch"},
		{containertypes.HostConfig{NetworkMode: "nosuch"}, "network nosuch not found"},
	} {
		_, err := c.ContainerCreate(ctx, cfg, &tc.hc, nil, nil, "")
		assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%+v: %v", tc.hc, err)
		assert.ErrorContains(t, err, tc.want)
	}
	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")
}

// TestUnsupportedOptionsRefused: an option berthd does not honour is an error naming it, never accepted
// and dropped.
func TestUnsupportedOptionsRefused(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "create", "--name", "target", "busybox", "true")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gpus", "all"}, "--gpus"},
		{[]string{"--storage-opt", "size=1G"}, "--storage-opt"},
		{[]string{"--blkio-weight", "300"}, "--blkio-weight"},
		{[]string{"--device-read-bps", "/dev/null:1mb"}, "--device-read-bps"},
		{[]string{"--oom-kill-disable"}, "--oom-kill-disable"},
		{[]string{"--memory-swappiness", "10"}, "--memory-swappiness"},
		{[]string{"--cpu-rt-runtime", "100"}, "--cpu-rt-runtime"},
		{[]string{"--mount", "type=bind,src=" + t.TempDir() + ",dst=/x,readonly,bind-propagation=rprivate,bind-recursive=readonly"}, "--mount bind-recursive=readonly"},
	} {
		res := d.Docker(t, append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")...)
		assert.Equal(t, res.ExitCode, 125, "%v: %s", tc.args, res.Combined())
		assert.Assert(t, is.Contains(res.Stderr, tc.want+" "), "%v", tc.args)
		assert.Assert(t, is.Contains(res.Stderr, "not supported"), "%v", tc.args)
	}
	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), mustDocker(t, d, "inspect", "-f", "{{.Id}}", "target")[:12])
}

// TestCreateValidation: dockerd's create-time checks, with its statuses and wording.
func TestCreateValidation(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	ms := time.Millisecond
	for _, tc := range []struct {
		cfg  containertypes.Config
		hc   containertypes.HostConfig
		want string
	}{
		{containertypes.Config{Env: []string{"=x"}}, containertypes.HostConfig{}, "invalid environment variable: =x"},
		{containertypes.Config{Env: []string{"A=1", ""}}, containertypes.HostConfig{}, "invalid environment variable:"},
		{containertypes.Config{Healthcheck: &containertypes.HealthConfig{Interval: 100}}, containertypes.HostConfig{}, "Interval in Healthcheck cannot be less than 1ms"},
		{containertypes.Config{Healthcheck: &containertypes.HealthConfig{Timeout: 5}}, containertypes.HostConfig{}, "Timeout in Healthcheck cannot be less than 1ms"},
		{containertypes.Config{Healthcheck: &containertypes.HealthConfig{Retries: -1}}, containertypes.HostConfig{}, "Retries in Healthcheck cannot be negative"},
		{containertypes.Config{Healthcheck: &containertypes.HealthConfig{StartPeriod: -ms}}, containertypes.HostConfig{}, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{containertypes.Config{}, containertypes.HostConfig{Tmpfs: map[string]string{"relative": ""}}, "invalid mount path: 'relative' mount path must be absolute"},
		{containertypes.Config{}, containertypes.HostConfig{Tmpfs: map[string]string{"/": ""}}, "invalid specification: destination can't be '/'"},
		{containertypes.Config{}, containertypes.HostConfig{Runtime: "nosuch"}, "unknown or invalid runtime name: nosuch"},
		{containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{DeviceCgroupRules: []string{"x 1:2 rwm"}}}, "invalid device cgroup rule format: 'x 1:2 rwm'"},
		{containertypes.Config{}, containertypes.HostConfig{CgroupnsMode: "other"}, "invalid cgroup namespace mode: other"},
		{containertypes.Config{}, containertypes.HostConfig{UsernsMode: "private"}, "--userns (HostConfig.UsernsMode) is not supported"},
		{containertypes.Config{}, containertypes.HostConfig{Annotations: nil, Isolation: "hyperv"}, "--isolation (HostConfig.Isolation) is not supported"},
	} {
		cfg := tc.cfg
		cfg.Image, cfg.Cmd = "busybox", strslice.StrSlice{"true"}
		_, err := c.ContainerCreate(ctx, &cfg, &tc.hc, nil, nil, "")
		assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%s: %v", tc.want, err)
		assert.ErrorContains(t, err, tc.want)
	}

	// A long name is a 400 naming the limit, not a failure deep inside.
	_, err := c.ContainerCreate(ctx, &containertypes.Config{Image: "busybox", Cmd: strslice.StrSlice{"true"}}, nil, nil, nil, strings.Repeat("a", 10000))
	assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%v", err)
	assert.ErrorContains(t, err, "the limit is 255 characters")
	r, err := c.ContainerCreate(ctx, &containertypes.Config{Image: "busybox", Cmd: strslice.StrSlice{"true"}}, nil, nil, nil, "")
	assert.NilError(t, err)
	err = c.ContainerRename(ctx, r.ID, strings.Repeat("b", 10000))
	assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%v", err)
	assert.ErrorContains(t, err, "the limit is 255 characters")
	assert.NilError(t, c.ContainerRemove(ctx, r.ID, containertypes.RemoveOptions{}))

	// A platform the image is not for: NotFound, as dockerd.
	_, err = c.ContainerCreate(ctx, &containertypes.Config{Image: "busybox", Cmd: strslice.StrSlice{"true"}}, nil, nil,
		&ocispec.Platform{OS: "linux", Architecture: "s390x"}, "")
	assert.Assert(t, cerrdefs.IsNotFound(err), "%v", err)
	assert.ErrorContains(t, err, "image with reference busybox was found but does not match the specified platform: wanted linux/s390x")
	assert.Equal(t, mustDocker(t, d, "ps", "-aq"), "")

	// Detach keys are checked before the upgrade: a 400, not a 101.
	id := mustDocker(t, d, "create", "-i", "busybox", "cat")
	for _, p := range []string{"/containers/" + id + "/attach?stream=1&stdin=1&detachKeys=ctrl-", "/exec-start"} {
		if p == "/exec-start" {
			mustDocker(t, d, "start", id)
			ex, err := c.ContainerExecCreate(ctx, id, containertypes.ExecOptions{Cmd: []string{"true"}, AttachStdout: true, DetachKeys: "ctrl-"})
			if err != nil {
				assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%v", err)
				continue
			}
			p = "/exec/" + ex.ID + "/start"
		}
		req, err := http.NewRequest(http.MethodPost, "http://berthd/v1.45"+p, strings.NewReader(`{"Detach":false,"Tty":false}`))
		assert.NilError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "tcp")
		resp, err := d.HTTPClient().Do(req)
		assert.NilError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusBadRequest, "%s: %s", p, body)
		assert.Assert(t, is.Contains(string(body), "Invalid detach keys"), "%s: %s", p, body)
	}
}
