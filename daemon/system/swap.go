package system

import (
	"os"
	"path/filepath"
	"strings"
)

// swapLimitSupported tells whether containers' swap can be limited: cgroup v1 needs swap accounting
// (memory.memsw.* files, absent unless the kernel runs with swapaccount=1); cgroup v2 needs the memory
// controller with memory.swap.max in the hierarchy (absent when the kernel has no swap accounting).
// Tests and clients skip their memory checks when /info says false, so it must not claim support.
func swapLimitSupported(cgroupRoot string) bool {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		_, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes"))
		return err == nil
	}
	b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"))
	if err != nil || !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ") {
		return false
	}
	// The root cgroup has no memory.swap.max; its children do when swap is accounted.
	matches, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "memory.swap.max"))
	return len(matches) > 0
}
