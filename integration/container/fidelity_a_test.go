package container

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berthd/integration/internal/daemon"
	cerrdefs "github.com/containerd/errdefs"
	containertypes "github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// tarEntries reads a tar file into name -> body (bodies of small regular files only).
func tarEntries(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	entries := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		body := ""
		if h.Typeflag == tar.TypeReg && h.Size < 256 {
			b, _ := io.ReadAll(tr)
			body = string(b)
		}
		entries[strings.TrimPrefix(h.Name, "./")] = body
	}
	return entries
}

// Resolving a user by name must not disturb the running container: copy-up, docker cp and commit keep
// working after exec -u, run -u and a healthcheck with a named USER.
func TestExecUserByNameKeepsLayerWritable(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "eu", "-u", "nobody", "--health-cmd", "true", "--health-interval", "1s",
		"busybox", "sleep", "1000")
	assert.Equal(t, mustDocker(t, d, "exec", "eu", "id", "-u"), "65534")
	assert.Equal(t, mustDocker(t, d, "exec", "-u", "root", "eu", "id", "-u"), "0")
	assert.Equal(t, mustDocker(t, d, "exec", "-u", "nobody:nogroup", "eu", "id", "-g"), "65534")
	waitFor(t, 30*time.Second, "a healthcheck", func() bool {
		return mustDocker(t, d, "inspect", "-f", "{{.State.Health.Status}}", "eu") == "healthy"
	})

	mustDocker(t, d, "exec", "-u", "root", "eu", "touch", "/tmp/x")
	mustDocker(t, d, "exec", "-u", "root", "eu", "rm", "/etc/group")
	mustDocker(t, d, "exec", "-u", "root", "eu", "sh", "-c", "echo changed > /etc/passwd.new")
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "in"), []byte("copied"), 0o644))
	mustDocker(t, d, "cp", filepath.Join(dir, "in"), "eu:/etc/")
	assert.Equal(t, mustDocker(t, d, "exec", "eu", "cat", "/etc/in"), "copied")

	mustDocker(t, d, "commit", "eu", "eu:img")
	out := mustDocker(t, d, "run", "--rm", "-u", "root", "eu:img", "sh", "-c",
		"ls /tmp/x /etc/in /etc/passwd.new && test ! -e /etc/group && echo ok")
	assert.Assert(t, is.Contains(out, "ok"), out)
	// A stopped container's user is resolved from a read-only view of its layer.
	mustDocker(t, d, "rm", "-f", "eu")
	assert.Equal(t, mustDocker(t, d, "run", "--rm", "-u", "nobody", "busybox", "id", "-u"), "65534")
}

// docker export of a running container is its whole root filesystem, with what was written at run time.
func TestExportRunning(t *testing.T) {
	d := newDaemon(t)
	mustDocker(t, d, "run", "-d", "--name", "ex", "-v", "exvol:/data", "busybox", "sh", "-c",
		"echo runtime > /tmp/written && echo vol > /data/v && sleep 1000")
	waitFor(t, 30*time.Second, "the runtime file", func() bool {
		return d.Docker(t, "exec", "ex", "test", "-e", "/data/v").ExitCode == 0
	})
	entries := exportEntries(t, d, "ex")
	assert.Equal(t, entries["tmp/written"], "runtime\n")
	_, ok := entries["bin/busybox"]
	assert.Assert(t, ok, "bin/busybox missing from the export")
	// As dockerd: the container's filesystem, not its volumes nor the kernel's pseudo-filesystems.
	_, ok = entries["data/v"]
	assert.Assert(t, !ok, "a volume's content is in the export")
	_, ok = entries["proc/self"]
	assert.Assert(t, !ok, "procfs is in the export")
	// The export did not disturb the running container.
	mustDocker(t, d, "exec", "ex", "touch", "/etc/after-export")
}

func exportEntries(t *testing.T, d *daemon.Daemon, name string) map[string]string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.tar")
	mustDocker(t, d, "export", "-o", p, name)
	f, err := os.Open(p)
	assert.NilError(t, err)
	defer f.Close()
	return tarEntries(t, f)
}

// docker cp follows symlinks in the middle of a path inside the container, copies in and out of volumes
// and bind mounts, and answers bad paths as dockerd.
func TestCopyPaths(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	bind := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(bind, "b"), []byte("bind"), 0o644))
	mustDocker(t, d, "run", "-d", "--name", "cp", "-v", "cpvol:/vol", "-v", bind+":/bind", "busybox", "sh", "-c",
		"mkdir -p /usr/lbin && echo tool > /usr/lbin/tool && ln -s usr/lbin /lbin && ln -s /usr/lbin /abs && echo v > /vol/v && sleep 1000")
	waitFor(t, 30*time.Second, "the set-up", func() bool { return d.Docker(t, "exec", "cp", "test", "-e", "/vol/v").ExitCode == 0 })
	dir := t.TempDir()
	for _, tc := range []struct{ src, want string }{
		{"/lbin/tool", "tool\n"}, {"/abs/tool", "tool\n"}, {"/vol/v", "v\n"}, {"/bind/b", "bind"},
	} {
		dst := filepath.Join(dir, strings.ReplaceAll(tc.src, "/", "_"))
		mustDocker(t, d, "cp", "cp:"+tc.src, dst)
		b, err := os.ReadFile(dst)
		assert.NilError(t, err)
		assert.Equal(t, string(b), tc.want, tc.src)
	}
	// A directory reached through a symlink with a trailing slash is copied under the requested name.
	mustDocker(t, d, "cp", "cp:/lbin/", filepath.Join(dir, "lb"))
	b, err := os.ReadFile(filepath.Join(dir, "lb", "tool"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "tool\n")

	assert.NilError(t, os.WriteFile(filepath.Join(dir, "in"), []byte("in"), 0o644))
	for _, dst := range []string{"/vol", "/bind", "/lbin", "/abs/"} {
		mustDocker(t, d, "cp", filepath.Join(dir, "in"), "cp:"+dst)
	}
	assert.Equal(t, mustDocker(t, d, "exec", "cp", "cat", "/vol/in", "/bind/in", "/usr/lbin/in"), "ininin")
	b, err = os.ReadFile(filepath.Join(bind, "in"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "in")

	// A symlink itself (no trailing slash): one entry, the link.
	rc, _, err := c.CopyFromContainer(ctx, "cp", "/lbin")
	assert.NilError(t, err)
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	assert.NilError(t, err)
	assert.Check(t, h.Typeflag == tar.TypeSymlink && h.Name == "lbin" && h.Linkname == "usr/lbin", "%+v", h)
	_, err = tr.Next()
	assert.Equal(t, err, io.EOF)
	rc.Close()

	_, _, err = c.CopyFromContainer(ctx, "cp", "/nonexist")
	assert.Assert(t, cerrdefs.IsNotFound(err), "%v", err)
	assert.ErrorContains(t, err, "Could not find the file /nonexist in container cp")
	_, _, err = c.CopyFromContainer(ctx, "cp", "/nonexist/x")
	assert.ErrorContains(t, err, "Could not find the file /nonexist/x in container cp")
	for _, p := range []string{"/etc/passwd/", "/etc/passwd/."} {
		_, _, err = c.CopyFromContainer(ctx, "cp", p)
		assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%s: %v", p, err)
		assert.ErrorContains(t, err, "not a directory")
	}
	err = c.CopyToContainer(ctx, "cp", "/etc/passwd", strings.NewReader(""), containertypes.CopyToContainerOptions{})
	assert.ErrorContains(t, err, "extraction point is not a directory")

	// A stopped container: the layer, symlinks in the middle still followed.
	mustDocker(t, d, "stop", "-t", "0", "cp")
	mustDocker(t, d, "cp", "cp:/lbin/tool", filepath.Join(dir, "stopped"))
	b, err = os.ReadFile(filepath.Join(dir, "stopped"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "tool\n")
	mustDocker(t, d, "cp", filepath.Join(dir, "in"), "cp:/abs/in2")
	mustDocker(t, d, "cp", "cp:/usr/lbin/in2", filepath.Join(dir, "in2"))
	b, err = os.ReadFile(filepath.Join(dir, "in2"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "in")
	// ... and its volumes and binds, out and in, as dockerd.
	for _, tc := range []struct{ src, want string }{{"/vol/v", "v\n"}, {"/bind/b", "bind"}} {
		dst := filepath.Join(dir, "stopped"+strings.ReplaceAll(tc.src, "/", "_"))
		mustDocker(t, d, "cp", "cp:"+tc.src, dst)
		b, err := os.ReadFile(dst)
		assert.NilError(t, err)
		assert.Equal(t, string(b), tc.want, tc.src)
	}
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "in3"), []byte("in3"), 0o644))
	mustDocker(t, d, "cp", filepath.Join(dir, "in3"), "cp:/vol/")
	mustDocker(t, d, "cp", filepath.Join(dir, "in3"), "cp:/bind/")
	b, err = os.ReadFile(filepath.Join(bind, "in3"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "in3")
	out := mustDocker(t, d, "run", "--rm", "-v", "cpvol:/vol", "busybox", "cat", "/vol/in3")
	assert.Equal(t, out, "in3")
}

// A process in the container swapping a directory and a symlink to / while the host copies in and out
// 10,000 times each never steers a copy to the host's files (the CVE-2018-15664 class): the host's canary
// is neither written nor read (its atime is older than its mtime, so with relatime any read would move
// it), and nothing appears beside it. Copies in and out run at the same time, the container never frozen
// for them.
func TestCopyRaceStaysInContainer(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	hostDir := t.TempDir()
	canary := filepath.Join(hostDir, "canary")
	assert.NilError(t, os.WriteFile(canary, []byte("HOST-SECRET"), 0o600))
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.NilError(t, os.Chtimes(canary, old, old.Add(time.Hour)))
	var before unix.Stat_t
	assert.NilError(t, unix.Stat(canary, &before))
	// Inside, /w/d is either a directory with the same layout (and a harmless canary) or a link to /.
	mustDocker(t, d, "run", "-d", "--name", "race", "busybox", "sh", "-c",
		"mkdir -p /w/d"+hostDir+" && echo inside > /w/d"+hostDir+"/canary && "+
			"while true; do mv /w/d /w/x; ln -s / /w/d; rm /w/d; mv /w/x /w/d; done")
	const rounds = 10000
	var tarIn bytes.Buffer
	tw := tar.NewWriter(&tarIn)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "written", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}))
	_, _ = tw.Write([]byte("x"))
	assert.NilError(t, tw.Close())

	var in, out int
	var leaked []string
	outErrs, inErrs := map[string]int{}, map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < rounds; i++ {
			// Odd rounds copy the directory (a walk), even ones the file.
			src := "/w/d" + hostDir
			if i%2 == 0 {
				src += "/canary"
			}
			rc, _, err := c.CopyFromContainer(ctx, "race", src)
			if err != nil {
				outErrs[errClass(err)]++
				continue
			}
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if err != nil {
					break
				}
				if b, _ := io.ReadAll(tr); strings.Contains(string(b), "HOST-SECRET") {
					leaked = append(leaked, h.Name)
				}
			}
			rc.Close()
			out++
		}
	}()
	start := time.Now()
	for i := 0; i < rounds; i++ {
		err := c.CopyToContainer(ctx, "race", "/w/d"+hostDir, bytes.NewReader(tarIn.Bytes()), containertypes.CopyToContainerOptions{})
		if err == nil {
			in++
		} else {
			inErrs[errClass(err)]++
		}
	}
	<-done
	t.Logf("%d copies out and %d in succeeded of %d each, in %s; failures out %v, in %v", out, in, rounds, time.Since(start).Round(time.Second), outErrs, inErrs)
	assert.Assert(t, is.Len(leaked, 0), "host file read through a copy out")
	// Both directions reached the container's directory many times (not every round: it is often a link).
	assert.Assert(t, out > 0 && in > 0)

	var after unix.Stat_t
	assert.NilError(t, unix.Stat(canary, &after))
	assert.Equal(t, after.Atim, before.Atim, "the host's canary was read")
	assert.Equal(t, after.Mtim, before.Mtim, "the host's canary was written")
	assert.Equal(t, after.Ctim, before.Ctim, "the host's canary was changed")
	b, err := os.ReadFile(canary)
	assert.NilError(t, err)
	assert.Equal(t, string(b), "HOST-SECRET")
	ents, err := os.ReadDir(hostDir)
	assert.NilError(t, err)
	assert.Equal(t, len(ents), 1, "a copy into the container wrote on the host")
	_, err = os.Stat("/written")
	assert.Assert(t, os.IsNotExist(err), "a copy into the container wrote /written on the host")
	// The container kept running through the copies.
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}}", "race"), "running")
	mustDocker(t, d, "exec", "race", "true")
}

// errClass names an error's class for the race test's log.
func errClass(err error) string {
	switch {
	case cerrdefs.IsNotFound(err):
		return "not found"
	case cerrdefs.IsInvalidArgument(err):
		return "invalid"
	case cerrdefs.IsConflict(err):
		return "conflict"
	}
	return err.Error()
}

// A command that cannot run: dockerd's exit codes, statuses and runc's message, for exec and run.
func TestCommandCannotRun(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	mustDocker(t, d, "run", "-d", "--name", "ex", "busybox", "sleep", "1000")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"exec", "ex", "nosuchbin"}, `OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchbin": executable file not found in $PATH`},
		{[]string{"exec", "ex", "/etc/passwd"}, `exec: "/etc/passwd": permission denied`},
		{[]string{"exec", "-u", "nosuch", "ex", "true"}, "unable to find user nosuch: no matching entries in passwd file"},
	} {
		res := d.Docker(t, tc.args...)
		assert.Equal(t, res.ExitCode, 126, "%v: %s", tc.args, res.Combined())
		assert.Assert(t, is.Contains(res.Combined(), tc.msg), "%v", tc.args)
		assert.Assert(t, !strings.Contains(res.Combined(), "start exec"), "berthd's own wrapping leaked: %s", res.Combined())
	}
	// Detached: the error is the answer, 400, and the exec's exit code is 126.
	id, err := c.ContainerExecCreate(ctx, "ex", containertypes.ExecOptions{Cmd: []string{"nosuchbin"}})
	assert.NilError(t, err)
	err = c.ContainerExecStart(ctx, id.ID, containertypes.ExecStartOptions{Detach: true})
	assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%v", err)
	ins, err := c.ContainerExecInspect(ctx, id.ID)
	assert.NilError(t, err)
	assert.Equal(t, ins.ExitCode, 126)

	for _, tc := range []struct {
		name, cmd string
		code      int
		msg       string
	}{
		{"rnotfound", "nosuchbin", 127, `exec: "nosuchbin": executable file not found in $PATH`},
		{"rnotexec", "/etc/passwd", 126, `exec: "/etc/passwd": permission denied`},
	} {
		res := d.Docker(t, "run", "--name", tc.name, "busybox", tc.cmd)
		assert.Equal(t, res.ExitCode, tc.code, res.Combined())
		assert.Assert(t, is.Contains(res.Combined(), "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "+tc.msg), res.Combined())
		assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.ExitCode}}", tc.name), strconv.Itoa(tc.code))
		err := c.ContainerStart(ctx, tc.name, containertypes.StartOptions{})
		assert.Assert(t, cerrdefs.IsInvalidArgument(err), "%v", err)
	}
}

// docker run -e NAME with NAME unset on the client runs, without NAME, as dockerd (runc refuses an entry
// without "="); exec -e too. --ipc host runs on a host without /dev/mqueue.
func TestUnsetEnvAndHostIPC(t *testing.T) {
	d := newDaemon(t)
	os.Unsetenv("BERTHD_SURELY_UNSET")
	out := mustDocker(t, d, "run", "--name", "envt", "-e", "BERTHD_SURELY_UNSET", "-e", "HOSTNAME", "-e", "KEPT=1", "busybox", "env")
	assert.Assert(t, !strings.Contains(out, "BERTHD_SURELY_UNSET"), out)
	assert.Assert(t, !strings.Contains(out, "HOSTNAME="), out)
	assert.Assert(t, is.Contains(out, "KEPT=1"))
	// The config keeps what the client sent, as dockerd's inspect shows it.
	assert.Assert(t, is.Contains(mustDocker(t, d, "inspect", "-f", "{{json .Config.Env}}", "envt"), `"BERTHD_SURELY_UNSET"`))
	mustDocker(t, d, "run", "-d", "--name", "envx", "-e", "KEPT=1", "busybox", "sleep", "1000")
	out = mustDocker(t, d, "exec", "-e", "BERTHD_SURELY_UNSET", "-e", "KEPT", "envx", "env")
	assert.Assert(t, !strings.Contains(out, "BERTHD_SURELY_UNSET"), out)
	assert.Assert(t, !strings.Contains(out, "KEPT"), out)

	out = mustDocker(t, d, "run", "--rm", "--ipc", "host", "busybox", "sh", "-c", "grep -E ' /dev/(mqueue|shm) ' /proc/mounts")
	assert.Assert(t, is.Contains(out, "mqueue /dev/mqueue mqueue"), out)
}

// Lifecycle as dockerd: kill returns once the container has exited; stop and restart finish when the
// client hangs up; restart of a --rm container keeps it.
func TestLifecycleFidelity(t *testing.T) {
	d := newDaemon(t)
	c := d.Client(t)
	ctx := context.Background()
	const ignoreTerm = `trap "" TERM; while true; do sleep 1; done`
	for i := 0; i < 3; i++ {
		name := "k" + strconv.Itoa(i)
		mustDocker(t, d, "run", "-d", "--name", name, "busybox", "sh", "-c", ignoreTerm)
		assert.NilError(t, c.ContainerKill(ctx, name, "KILL"))
		ins, err := c.ContainerInspect(ctx, name)
		assert.NilError(t, err)
		assert.Equal(t, ins.State.Status, "exited", "kill returned before the exit")
		assert.Equal(t, ins.State.ExitCode, 137)
	}

	// The client gives up during the stop timeout; the stop still ends with SIGKILL.
	mustDocker(t, d, "run", "-d", "--name", "hang", "busybox", "sh", "-c", ignoreTerm)
	timeout := 2
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := c.ContainerStop(cctx, "hang", containertypes.StopOptions{Timeout: &timeout})
	cancel()
	assert.Assert(t, err != nil)
	waitFor(t, 30*time.Second, "the abandoned stop to finish", func() bool {
		return mustDocker(t, d, "inspect", "-f", "{{.State.Status}}", "hang") == "exited"
	})

	// The same for restart: the container ends up running again, a new process.
	mustDocker(t, d, "run", "-d", "--name", "hangr", "busybox", "sh", "-c", ignoreTerm)
	before := mustDocker(t, d, "inspect", "-f", "{{.State.StartedAt}}", "hangr")
	cctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	err = c.ContainerRestart(cctx, "hangr", containertypes.StopOptions{Timeout: &timeout})
	cancel()
	assert.Assert(t, err != nil)
	waitFor(t, 30*time.Second, "the abandoned restart to finish", func() bool {
		out := mustDocker(t, d, "inspect", "-f", "{{.State.Status}} {{.State.StartedAt}}", "hangr")
		return out != "running "+before && strings.HasPrefix(out, "running ")
	})

	// docker restart of a --rm container restarts it (dockerd does not remove it on the way); stop
	// and kill of one remove it.
	mustDocker(t, d, "run", "-d", "--rm", "--name", "rmr", "busybox", "sleep", "1000")
	mustDocker(t, d, "restart", "-t", "0", "rmr")
	assert.Equal(t, mustDocker(t, d, "inspect", "-f", "{{.State.Status}}", "rmr"), "running")
	mustDocker(t, d, "kill", "rmr")
	waitFor(t, 30*time.Second, "the --rm container to be removed", func() bool {
		return d.Docker(t, "inspect", "rmr").ExitCode != 0
	})
}
