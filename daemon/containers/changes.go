package containers

import (
	"context"
	"os"
	"path"
	"sort"
	"strings"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/containerd/continuity/fs"
)

// Changes kinds of GET /containers/{id}/changes.
const (
	changeModify = 0
	changeAdd    = 1
	changeDelete = 2
)

// initPaths are created by the runtime as mount points, as dockerd's init layer does; they are not the
// container's changes.
var initPaths = map[string]bool{
	"/dev": true, "/proc": true, "/sys": true, "/etc/hosts": true, "/etc/hostname": true,
	"/etc/resolv.conf": true, "/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true, "/.dockerenv": true,
}

// notChanges tells which paths of a container's layer are not its own changes: the runtime's mount points
// with everything under them, and what is under the container's volume and bind destinations. A
// destination itself, made in the layer by the runtime, is a change, as with dockerd.
func notChanges(c *Container) func(p string) bool {
	return func(p string) bool {
		for q := p; q != "/" && q != "."; q = path.Dir(q) {
			if initPaths[q] {
				return true
			}
			if _, ok := c.MountPoints[q]; ok && q != p {
				return true
			}
		}
		return false
	}
}

// dropInitParents removes the "changed" directories that only hold the runtime's mount points (/etc
// for /etc/hosts): dockerd keeps those in an init layer below the container's, so they are no change.
func dropInitParents(changes []ctypes.FilesystemChange) []ctypes.FilesystemChange {
	holds := map[string]bool{}
	for p := range initPaths {
		for q := path.Dir(p); q != "/" && q != "."; q = path.Dir(q) {
			holds[q] = true
		}
	}
	out := make([]ctypes.FilesystemChange, 0, len(changes))
	for _, ch := range changes {
		if ch.Kind == changeModify && holds[ch.Path] {
			own := false
			for _, o := range changes {
				if strings.HasPrefix(o.Path, ch.Path+"/") {
					own = true
					break
				}
			}
			if !own {
				continue
			}
		}
		out = append(out, ch)
	}
	return out
}

// Changes lists what the container changed in its filesystem (GET /containers/{id}/changes).
func (s *filesystem) Changes(ctx context.Context, ref string) ([]ctypes.FilesystemChange, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	skip := notChanges(c)
	out := []ctypes.FilesystemChange{}
	err = s.layers.Changes(ctx, c.ID, func(k fs.ChangeKind, p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		// An opaque directory comes as the deletion of its marker; the API shows the directory itself.
		if skip(p) || strings.HasPrefix(path.Base(p), ".wh.") {
			return nil
		}
		kind := changeModify
		switch k {
		case fs.ChangeKindAdd:
			kind = changeAdd
		case fs.ChangeKindDelete:
			kind = changeDelete
		}
		out = append(out, ctypes.FilesystemChange{Path: p, Kind: kind})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out = dropInitParents(out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
