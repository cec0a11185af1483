package containers

import (
	"strings"
	"testing"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/image"
	"github.com/containerd/errdefs"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCheckPlatform(t *testing.T) {
	rc := &image.RunConfig{OS: "linux", Arch: "amd64"}
	for _, ok := range []string{"", "linux", "linux/amd64", "Linux/x86_64", "linux/amd64/v2"} {
		assert.NilError(t, checkPlatform("busybox", ok, rc), ok)
	}
	err := checkPlatform("busybox", "linux/arm64", rc)
	assert.Assert(t, errdefs.IsNotFound(err))
	assert.Error(t, err, "image with reference busybox was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64")
	assert.Assert(t, errdefs.IsNotFound(checkPlatform("busybox", "windows", rc)))
	assert.Assert(t, errdefs.IsInvalidArgument(checkPlatform("busybox", "/amd64", rc)))
}

func TestValidateConfig(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, tc := range []struct {
		cfg  ctypes.Config
		want string
	}{
		{ctypes.Config{Env: []string{"A=1", "B", "C="}}, ""},
		{ctypes.Config{Env: []string{"=1"}}, "invalid environment variable: =1"},
		{ctypes.Config{Healthcheck: &ctypes.HealthConfig{Interval: ms, Timeout: ms, StartPeriod: ms, StartInterval: ms}}, ""},
		{ctypes.Config{Healthcheck: &ctypes.HealthConfig{Interval: ms - 1}}, "Interval in Healthcheck cannot be less than 1ms"},
		{ctypes.Config{Healthcheck: &ctypes.HealthConfig{StartInterval: -1}}, "StartInterval in Healthcheck cannot be less than 1ms"},
		{ctypes.Config{Healthcheck: &ctypes.HealthConfig{Retries: -1}}, "Retries in Healthcheck cannot be negative"},
	} {
		err := validateConfig(&tc.cfg)
		if tc.want == "" {
			assert.NilError(t, err)
			continue
		}
		assert.Assert(t, errdefs.IsInvalidArgument(err))
		assert.Error(t, err, tc.want)
	}
}

func TestValidateHostConfigDefaultsAndRefusals(t *testing.T) {
	hc := &ctypes.HostConfig{}
	assert.NilError(t, validateHostConfig(hc))
	assert.Equal(t, hc.Runtime, "runc")
	assert.Equal(t, hc.IpcMode, "private")
	assert.Assert(t, hc.CgroupnsMode == "host" || hc.CgroupnsMode == "private")

	swappiness := int64(-1)
	assert.NilError(t, validateHostConfig(&ctypes.HostConfig{Resources: ctypes.Resources{MemorySwappiness: &swappiness}}), "-1 is the CLI's unset")
	// Links are honoured (links.go, the network service), not refused.
	assert.NilError(t, validateHostConfig(&ctypes.HostConfig{Links: []string{"a:b"}}))
	for _, hc := range []*ctypes.HostConfig{
		{Resources: ctypes.Resources{DeviceRequests: []ctypes.DeviceRequest{{Count: -1}}}},
		{StorageOpt: map[string]string{"size": "1G"}},
		{Resources: ctypes.Resources{BlkioDeviceReadBps: []*ctypes.ThrottleDevice{{Path: "/dev/sda", Rate: 1}}}},
	} {
		err := validateHostConfig(hc)
		assert.Assert(t, errdefs.IsInvalidArgument(err), "%+v", hc)
		assert.Assert(t, is.Contains(err.Error(), "is not supported by berthd"))
	}
	assert.ErrorContains(t, validateName(strings.Repeat("a", 256)), "the limit is 255 characters")
	assert.NilError(t, validateName("/"+strings.Repeat("a", 255)))
}
