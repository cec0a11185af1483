package system

import (
	"context"
	"errors"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestInfoUsesSources(t *testing.T) {
	s := New(Config{ID: "id1", Root: "/r", Labels: func() []string { return []string{"a=b"} }}, Sources{
		Containerd:    func(context.Context) (string, string, error) { return "1.6", "rev", nil },
		VolumeDrivers: func() []string { return []string{"local", "vp"} },
		StorageDriver: func() (string, [][2]string) { return "overlayfs", [][2]string{{"Backing Filesystem", "extfs"}} },
		Images:        func(context.Context) int { return 3 },
		Containers:    func() (int, int, int, int) { return 4, 1, 1, 2 },
	})
	info := s.Info(context.Background())
	assert.Check(t, is.Equal(info.ID, "id1"))
	assert.Check(t, is.Equal(info.DockerRootDir, "/r"))
	assert.Check(t, is.Equal(info.Swarm.LocalNodeState, "inactive"), "anything else makes the CLI print swarm details")
	assert.Check(t, is.Equal(info.ContainerdCommit.ID, "rev"))
	assert.Check(t, is.DeepEqual(info.Plugins.Volume, []string{"local", "vp"}))
	assert.Check(t, is.Equal(info.Driver, "overlayfs"))
	assert.Check(t, is.Equal(info.Images, 3))
	assert.Check(t, is.Equal(info.ContainersStopped, 2))
	assert.Check(t, is.DeepEqual(info.Labels, []string{"a=b"}))
	assert.Check(t, info.NCPU > 0 && info.MemTotal > 0)
	assert.Check(t, is.Equal(info.OSType, "linux"))
	assert.Check(t, is.Len(withoutSwapWarning(info.Warnings), 0))

	v := s.Version(context.Background())
	assert.Check(t, is.Equal(v.Components[0].Name, "Engine"))
	assert.Check(t, is.Equal(v.Components[1].Name, "containerd"))
	assert.Check(t, is.Equal(v.APIVersion, "1.45"))
}

func TestInfoWithContainerdDown(t *testing.T) {
	s := New(Config{}, Sources{Containerd: func(context.Context) (string, string, error) { return "", "", errors.New("dial: refused") }})
	info := s.Info(context.Background())
	w := withoutSwapWarning(info.Warnings)
	assert.Check(t, is.Len(w, 1))
	assert.Check(t, is.Contains(w[0], "containerd is not reachable"))
	assert.Check(t, info.Labels != nil && info.DriverStatus != nil, "lists are never null on the wire")
}

// withoutSwapWarning drops the warning that depends on the machine's swap accounting.
func withoutSwapWarning(w []string) []string {
	var out []string
	for _, s := range w {
		if s != "WARNING: No swap limit support" {
			out = append(out, s)
		}
	}
	return out
}
