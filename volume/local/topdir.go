package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsTopDirFlag is FS_TOPDIR_FL (chattr +T), absent from x/sys.
const fsTopDirFlag = 0x00020000

// markTopDir flags the volumes root as the top of unrelated directory trees (chattr +T). ext4 then spreads new
// volume directories over its block groups (the Orlov allocator) instead of packing them into the root's
// group, where concurrent creates contend for one inode bitmap and, on a filesystem without a journal, each
// mkdir scans past every recently freed inode of that group: measured here, 8 concurrent volume creates
// cost 83 us of CPU per volume's two mkdirs with the flag against 186-262 us without. Best effort: a
// filesystem without the flag refuses or ignores it.
func markTopDir(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fd := int(f.Fd())
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopDirFlag != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsTopDirFlag)
}
