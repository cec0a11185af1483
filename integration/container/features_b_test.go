package container

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	containertypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/docker/pkg/stdcopy"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestContainerFeaturesB: features dockerd has that berthd refused or dropped.
func TestContainerFeaturesB(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()

	// --pid container:<id> shares the target's PID namespace.
	mustDocker(t, d, "run", "-d", "--name", "target", "--group-add", "1234", "busybox", "sleep", "300")
	out := mustDocker(t, d, "run", "--rm", "--pid", "container:target", "busybox", "ps", "-o", "comm")
	assert.Assert(t, is.Contains(out, "sleep"), out)

	// --device-cgroup-rule allows a device the default rules do not (10:237, loop-control, only opened).
	openDev := "mknod /tmp/n c 10 237 && dd if=/tmp/n of=/dev/null count=0 2>/dev/null && echo opened"
	out = mustDocker(t, d, "run", "--rm", "--device-cgroup-rule", "c 10:* rwm", "busybox", "sh", "-c", openDev)
	assert.Equal(t, out, "opened")
	res := d.Docker(t, "run", "--rm", "busybox", "sh", "-c", openDev)
	assert.Assert(t, res.ExitCode != 0, "without the rule the device cgroup refuses: %s", res.Combined())

	// --domainname is the UTS domain name.
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--domainname", "example.com", "busybox", "cat", "/proc/sys/kernel/domainname"), "example.com")

	// --ipc none: no /dev/shm, as dockerd.
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--ipc", "none", "busybox", "sh", "-c", "mount | grep /dev/shm || echo none"), "none")

	// --cgroupns: private shows the container's cgroup as the root; the recorded default (host on cgroup
	// v1, private on v2, as dockerd) is what the container gets.
	out = mustDocker(t, d, "run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup")
	assert.Assert(t, strings.Contains(out+"\n", ":/\n"), out)
	mustDocker(t, d, "create", "--name", "cgdefault", "busybox", "cat", "/proc/self/cgroup")
	mode := mustDocker(t, d, "inspect", "-f", "{{.HostConfig.CgroupnsMode}}", "cgdefault")
	out = mustDocker(t, d, "start", "-a", "cgdefault")
	assert.Equal(t, mode == "private", !strings.Contains(out, "/berth"), "mode %s: %s", mode, out)

	// What create records, as dockerd: WorkingDir cleaned, IpcMode private (shareable for API < 1.40),
	// runtime runc, PidsLimit unset for 0/-1.
	mustDocker(t, d, "create", "--name", "rec", "-w", "/tmp/", "--pids-limit", "-1", "--runtime", "io.containerd.runc.v2", "busybox", "true")
	out = mustDocker(t, d, "inspect", "-f", "{{.Config.WorkingDir}} {{.HostConfig.IpcMode}} {{.HostConfig.Runtime}} {{json .HostConfig.PidsLimit}}", "rec")
	assert.Equal(t, out, "/tmp private io.containerd.runc.v2 null")
	mustDocker(t, d, "create", "--name", "rec2", "busybox", "true")
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.HostConfig.Runtime}}", "rec2"), "runc")
	old, err := d.ClientAt(t, "1.39").ContainerCreate(ctx, &containertypes.Config{Image: "busybox", Cmd: strslice.StrSlice{"true"}}, &containertypes.HostConfig{}, nil, nil, "")
	assert.NilError(t, err)
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.HostConfig.IpcMode}}", old.ID), "shareable")

	// exec: the container's supplementary groups (with the primary one first, as dockerd's), the console
	// size given at create.
	assert.Equal(t, mustDocker(t, d, "exec", "target", "id"), "uid=0(root) gid=0(root) groups=0(root),1234")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "busybox", "id"), "uid=0(root) gid=0(root) groups=0(root)")
	cs := [2]uint{33, 77}
	ex, err := c.ContainerExecCreate(ctx, "target", containertypes.ExecOptions{Cmd: []string{"stty", "size"}, Tty: true, AttachStdout: true, ConsoleSize: &cs})
	assert.NilError(t, err)
	hr, err := c.ContainerExecAttach(ctx, ex.ID, containertypes.ExecAttachOptions{Tty: true})
	assert.NilError(t, err)
	b, _ := io.ReadAll(hr.Reader)
	hr.Close()
	assert.Equal(t, strings.TrimSpace(string(b)), "33 77")

	// exec framing follows the start request's Tty: a TTY exec started without Tty is multiplexed.
	ex, err = c.ContainerExecCreate(ctx, "target", containertypes.ExecOptions{Cmd: []string{"echo", "framed"}, Tty: true, AttachStdout: true})
	assert.NilError(t, err)
	hr, err = c.ContainerExecAttach(ctx, ex.ID, containertypes.ExecAttachOptions{Tty: false})
	assert.NilError(t, err)
	var stdout, stderr strings.Builder
	_, err = stdcopy.StdCopy(&stdout, &stderr, hr.Reader)
	hr.Close()
	assert.NilError(t, err)
	assert.Equal(t, strings.TrimSpace(stdout.String()), "framed")

	// One-shot stats: one immediate sample without a baseline; a plain one has a baseline.
	st, err := c.ContainerStatsOneShot(ctx, "target")
	assert.NilError(t, err)
	var one containertypes.StatsResponse
	assert.NilError(t, json.NewDecoder(st.Body).Decode(&one))
	st.Body.Close()
	assert.Equal(t, one.PreCPUStats.CPUUsage.TotalUsage, uint64(0))
	assert.Assert(t, one.PreRead.IsZero())
	assert.Assert(t, one.CPUStats.CPUUsage.TotalUsage > 0)
	st, err = c.ContainerStats(ctx, "target", false)
	assert.NilError(t, err)
	var two containertypes.StatsResponse
	assert.NilError(t, json.NewDecoder(bufio.NewReader(st.Body)).Decode(&two))
	st.Body.Close()
	assert.Assert(t, two.PreCPUStats.CPUUsage.TotalUsage > 0)

	// PidsLimit update: 0 means unlimited (recorded 0); clients older than 1.40 cannot change it.
	mustDocker(t, d, "run", "-d", "--name", "pids", "--pids-limit", "20", "busybox", "sleep", "300")
	zero := int64(0)
	_, err = c.ContainerUpdate(ctx, "pids", containertypes.UpdateConfig{Resources: containertypes.Resources{PidsLimit: &zero}})
	assert.NilError(t, err)
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{json .HostConfig.PidsLimit}}", "pids"), "0")
	assert.Equal(t, mustDocker(t, d, "exec", "pids", "cat", "/sys/fs/cgroup/pids/pids.max"), "max")
	seven := int64(7)
	_, err = d.ClientAt(t, "1.39").ContainerUpdate(ctx, "pids", containertypes.UpdateConfig{Resources: containertypes.Resources{PidsLimit: &seven}})
	assert.NilError(t, err)
	assert.Equal(t, mustDocker(t, d, "exec", "pids", "cat", "/sys/fs/cgroup/pids/pids.max"), "max")

	// commit expands variables in --change as dockerd.
	mustDocker(t, d, "run", "--name", "cm", "-v", "/data", "busybox", "touch", "/tmp/x")
	mustDocker(t, d, "commit", "--change", "ENV PATH=$PATH:/foo", "cm", "cmimg")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "cmimg", "sh", "-c", "echo $PATH"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/foo")

	// diff: no /etc noise from the hosts/hostname/resolv.conf mount points; the volume's mount point is
	// an addition, as dockerd shows it.
	assert.Equal(t, mustDocker(t, d, "diff", "cm"), "A /data\nC /tmp\nA /tmp/x")
	mustDocker(t, d, "run", "--name", "quiet", "busybox", "true")
	assert.Equal(t, mustDocker(t, d, "diff", "quiet"), "")

	// SizeRootFs: the whole root file system, at least the RW layer.
	insp, _, err := c.ContainerInspectWithRaw(ctx, "cm", true)
	assert.NilError(t, err)
	assert.Assert(t, insp.SizeRw != nil && insp.SizeRootFs != nil)
	assert.Assert(t, *insp.SizeRootFs > *insp.SizeRw && *insp.SizeRootFs > 1<<20, "%d %d", *insp.SizeRootFs, *insp.SizeRw)
	out = mustDocker(t, d, "ps", "-as", "--filter", "name=^cm$", "--format", "{{.Size}}")
	assert.Assert(t, is.Contains(out, "(virtual "), out)

	// Volume subpaths (API 1.45): resolved inside the volume, links included; nothing pinned is left.
	mustDocker(t, d, "run", "--rm", "-v", "sv:/v", "busybox", "sh", "-c", "mkdir /v/sub && echo hi > /v/sub/f && echo top > /v/top && ln -s / /v/root && ln -s ../../../../etc /v/up")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--mount", "type=volume,src=sv,dst=/x,volume-subpath=sub", "busybox", "cat", "/x/f"), "hi")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--mount", "type=volume,src=sv,dst=/x/t,volume-subpath=top", "busybox", "cat", "/x/t"), "top")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "--mount", "type=volume,src=sv,dst=/x,volume-subpath=root", "busybox", "ls", "/x"), "root\nsub\ntop\nup")
	for _, bad := range []string{"up", "nosuch", "../x", "/abs"} {
		res := d.Docker(t, "run", "--rm", "--mount", "type=volume,src=sv,dst=/x,volume-subpath="+bad, "busybox", "ls", "/x")
		assert.Assert(t, res.ExitCode != 0, "%s: %s", bad, res.Combined())
	}
	ents, err := os.ReadDir(filepath.Join(d.ExecRoot, "subpaths"))
	assert.Assert(t, err != nil || len(ents) == 0, "pinned subpaths left: %v", ents)

	// /info says whether swap can be limited; when it says so, a swap limit is applied.
	info, err := c.Info(ctx)
	assert.NilError(t, err)
	if info.SwapLimit {
		out = mustDocker(t, d, "run", "--rm", "-m", "32m", "--memory-swap", "64m", "busybox", "cat", "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		assert.Equal(t, out, "67108864")
	} else {
		assert.Assert(t, is.Contains(strings.Join(info.Warnings, "\n"), "No swap limit support"))
	}
}
