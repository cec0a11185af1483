package system

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
)

func TestSwapLimitSupported(t *testing.T) {
	write := func(root, p string) {
		t.Helper()
		assert.NilError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(root, p), []byte("memory pids\n"), 0o644))
	}
	v1 := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(v1, "memory"), 0o755))
	write(v1, "memory/memory.limit_in_bytes")
	assert.Equal(t, swapLimitSupported(v1), false, "v1 without swap accounting")
	write(v1, "memory/memory.memsw.limit_in_bytes")
	assert.Equal(t, swapLimitSupported(v1), true, "v1 with swap accounting")

	v2 := t.TempDir()
	write(v2, "cgroup.controllers")
	write(v2, "cgroup.subtree_control")
	write(v2, "system.slice/memory.max")
	assert.Equal(t, swapLimitSupported(v2), false, "v2 without memory.swap.max")
	write(v2, "system.slice/memory.swap.max")
	assert.Equal(t, swapLimitSupported(v2), true, "v2 with swap accounting")
}
