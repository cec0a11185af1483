package supervisor_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthd/berthd/hack/testenv"

	versionapi "github.com/containerd/containerd/api/services/version/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/berthd/berthd/libcontainerd/supervisor"
	"github.com/berthd/berthd/libcontainerd/supervisor/testutil"
)

// version checks health and asks containerd's version service over gRPC (generated API stubs only,
// not the containerd client, which this package must not depend on).
func version(t *testing.T, address string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	assert.NilError(t, err)
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	assert.NilError(t, err)
	assert.Equal(t, r.Status, healthpb.HealthCheckResponse_SERVING)
	v, err := versionapi.NewVersionClient(conn).Version(ctx, &emptypb.Empty{})
	assert.NilError(t, err)
	assert.Assert(t, v.Version != "")
	return v.Version
}

func TestStartRestartStop(t *testing.T) {
	restarts := make(chan int, 10)
	var stateDir string
	s := testutil.Start(t, supervisor.Config{OnRestart: func(pid int) { restarts <- pid }})
	stateDir = filepath.Dir(s.Address())

	t.Logf("containerd %s", version(t, s.Address()))
	st, err := os.Stat(filepath.Join(stateDir, "containerd.toml"))
	assert.NilError(t, err)
	assert.Equal(t, st.Mode().Perm(), os.FileMode(0o600))
	b, err := os.ReadFile(filepath.Join(stateDir, "containerd.pid"))
	assert.NilError(t, err)
	pid := s.Pid()
	assert.Equal(t, strings.TrimSpace(string(b)), strconv.Itoa(pid))
	pgid, err := syscall.Getpgid(pid)
	assert.NilError(t, err)
	assert.Equal(t, pgid, pid, "containerd must lead its own process group")

	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	select {
	case npid := <-restarts:
		assert.Assert(t, npid != pid)
		assert.Equal(t, s.Pid(), npid)
	case <-time.After(30 * time.Second):
		t.Fatal("containerd was not restarted")
	}
	version(t, s.Address())

	last := s.Pid()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	assert.NilError(t, s.Stop(ctx))
	assert.Assert(t, syscall.Kill(last, 0) != nil, "containerd still running after Stop")
	_, err = os.Stat(filepath.Join(stateDir, "containerd.pid"))
	assert.Assert(t, os.IsNotExist(err))
	assert.NilError(t, s.Stop(ctx), "Stop is idempotent")
}

func TestAdoptLiveContainerd(t *testing.T) {
	testenv.NeedRoot(t)
	stateDir, err := os.MkdirTemp("/tmp", "ctd")
	assert.NilError(t, err)
	defer os.RemoveAll(stateDir)
	cfg := supervisor.Config{RootDir: filepath.Join(stateDir, "root"), StateDir: stateDir}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	first, err := supervisor.Start(ctx, cfg)
	assert.NilError(t, err)
	pid := first.Pid()
	// Simulate a berthd restart with live-restore: the first supervisor goes away, containerd keeps
	// running. A second supervisor with the same config must reuse it rather than start another.
	first.Detach()
	second, err := supervisor.Start(ctx, cfg)
	assert.NilError(t, err)
	assert.Equal(t, second.Pid(), pid)
	version(t, second.Address())

	// A different config is not reused.
	cfg.LogLevel = "warn"
	second.Detach()
	third, err := supervisor.Start(ctx, cfg)
	assert.NilError(t, err)
	defer third.Stop(ctx)
	assert.Check(t, third.Pid() != pid)
	version(t, third.Address())
}

func TestSocketPathTooLong(t *testing.T) {
	_, err := supervisor.Start(context.Background(), supervisor.Config{
		RootDir:  t.TempDir(),
		StateDir: "/tmp/" + strings.Repeat("x", 120),
	})
	assert.Check(t, is.ErrorContains(err, "socket path too long"))
}

// TestRestartOnFailedHealthChecks freezes containerd: it stays alive but stops answering, so the monitor
// must kill and replace it.
func TestRestartOnFailedHealthChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~15s")
	}
	restarts := make(chan int, 10)
	s := testutil.Start(t, supervisor.Config{OnRestart: func(pid int) { restarts <- pid }})
	pid := s.Pid()
	assert.NilError(t, syscall.Kill(pid, syscall.SIGSTOP))
	select {
	case npid := <-restarts:
		assert.Assert(t, npid != pid)
	case <-time.After(60 * time.Second):
		syscall.Kill(pid, syscall.SIGCONT)
		t.Fatal("frozen containerd was not replaced")
	}
	assert.Assert(t, syscall.Kill(pid, 0) != nil, "frozen containerd must be killed")
	version(t, s.Address())
}

func TestStartFailureReportsLog(t *testing.T) {
	testenv.NeedRoot(t)
	dir, err := os.MkdirTemp("/tmp", "ctd")
	assert.NilError(t, err)
	defer os.RemoveAll(dir)
	// A "containerd" that prints and exits: Start must fail fast and say where to look.
	bin := filepath.Join(dir, "fake-containerd")
	assert.NilError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho 'boom: bad config' >&2\nexit 1\n"), 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = supervisor.Start(ctx, supervisor.Config{RootDir: filepath.Join(dir, "root"), StateDir: dir, Binary: bin})
	assert.Check(t, is.ErrorContains(err, "containerd exited during start-up"))
	assert.Check(t, is.ErrorContains(err, "boom: bad config"))

	_, err = supervisor.Start(ctx, supervisor.Config{RootDir: filepath.Join(dir, "root"), StateDir: dir, Binary: "/nonexistent/containerd"})
	assert.Check(t, is.ErrorContains(err, "containerd binary"))
}
