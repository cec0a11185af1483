// Package local owns the built-in `local` volume driver: one directory per volume under
// <data-root>/volumes/<name>/_data, optionally backed by a filesystem mounted from the `type`, `device` and
// `o` options (kept in opts.json beside _data) on first use and unmounted on last use.
//
// Client-given names are checked against a strict pattern before they touch the filesystem, so a name can
// never address a path outside the volumes root. It imports only `volume` and low-level libraries; never
// the store, the service, the daemon or the API server.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthd/berthd/volume"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/locker"
	"github.com/moby/sys/mountinfo"
	"github.com/pkg/errors"
)

const (
	// DataDir is the directory inside a volume's directory that holds (or is the mountpoint of) the data.
	DataDir = "_data"
	// optsFile records the mount options of a volume created with options.
	optsFile = "opts.json"
	// trashDir holds volume directories being deleted; its name can never be a volume name, so a crash in
	// the middle of a delete never leaves a half-deleted directory that looks like a volume.
	trashDir = ".trash"
)

// validNameChars is the rule for volume names (dockerd's restricted name characters).
const validNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`

var validName = regexp.MustCompile(`^` + validNameChars + `+$`)

// MaxNameLength is the longest local volume name: each volume is a directory named after it, and no
// filesystem takes a longer file name (NAME_MAX). dockerd has no check and fails with a 500
// ("file name too long") from mkdir.
const MaxNameLength = 255

// ValidateName reports whether name is usable as a local volume name, with dockerd's messages.
func ValidateName(name string) error {
	if len(name) > MaxNameLength {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("volume name is too long (%d characters): names may be at most %d characters", len(name), MaxNameLength))
	}
	if len(name) == 1 {
		return errdefs.ErrInvalidArgument.WithMessage("volume name is too short, names should be at least two alphanumeric characters")
	}
	if !validName.MatchString(name) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, validNameChars))
	}
	return nil
}

// Root is the local driver. It is safe for concurrent use: a per-name lock serializes operations on one
// volume and the index lock is held only around map access, never across I/O.
type Root struct {
	path  string
	locks *locker.Locker

	mu      sync.RWMutex
	volumes map[string]*localVolume
}

var _ volume.Driver = (*Root)(nil)

// New opens the driver on path (normally <data-root>/volumes), creating it 0701, and loads every volume
// directory found there. A _data already mounted (a daemon restart with live containers) is adopted as
// mounted, not torn down.
func New(ctx context.Context, path string) (*Root, error) {
	if err := os.MkdirAll(path, 0o701); err != nil {
		return nil, errors.Wrap(err, "local volume driver")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	markTopDir(abs)
	r := &Root{path: abs, locks: locker.New(), volumes: map[string]*localVolume{}}
	// Whatever a previous run was deleting is garbage now.
	_ = os.RemoveAll(filepath.Join(abs, trashDir))

	mounted := map[string]bool{}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(abs))
	if err != nil {
		log.G(ctx).WithError(err).Warn("local volumes: cannot read mount table; assuming nothing is mounted")
	}
	for _, m := range mounts {
		mounted[m.Mountpoint] = true
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, errors.Wrap(err, "local volume driver")
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && validName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	// Two syscalls a volume, thousands of volumes: spread over a few goroutines, start-up does not wait
	// for them one after the other.
	vols := make([]*localVolume, len(names))
	var wg sync.WaitGroup
	for w := 0; w < min(restoreWorkers, len(names)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(names); i += restoreWorkers {
				v := r.newVolume(names[i])
				fi, err := os.Stat(v.dir())
				if err != nil {
					continue
				}
				v.createdAt = ctime(fi)
				opts, err := readOpts(v.dir())
				if err != nil {
					log.G(ctx).WithError(err).WithField("volume", v.name).Warn("local volume: cannot read options; ignoring them")
				}
				v.opts = opts
				v.mounted = mounted[v.path]
				vols[i] = v
			}
		}()
	}
	wg.Wait()
	for _, v := range vols {
		if v != nil {
			r.volumes[v.name] = v
		}
	}
	return r, nil
}

const restoreWorkers = 8

// Name is "local".
func (r *Root) Name() string { return volume.DefaultDriverName }

// Scope is local.
func (r *Root) Scope(context.Context) string { return volume.LocalScope }

// Path is the directory holding the volumes.
func (r *Root) Path() string { return r.path }

func (r *Root) newVolume(name string) *localVolume {
	return &localVolume{
		root:   r,
		name:   name,
		path:   filepath.Join(r.path, name, DataDir),
		active: map[string]int{},
	}
}

// Create makes the volume directory (and opts.json when options are given). Creating an existing volume
// returns it unchanged.
func (r *Root) Create(ctx context.Context, name string, opts map[string]string) (volume.Volume, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	mo, err := parseOpts(opts)
	if err != nil {
		return nil, err
	}
	r.locks.Lock(name)
	defer r.locks.Unlock(name)

	if v := r.lookup(name); v != nil {
		return v, nil
	}
	v := r.newVolume(name)
	if err := os.Mkdir(v.dir(), 0o701); err != nil && !os.IsExist(err) {
		return nil, errors.Wrapf(err, "error while creating volume root path '%s'", v.dir())
	}
	if err := os.Mkdir(v.path, 0o755); err != nil && !os.IsExist(err) {
		_ = os.RemoveAll(v.dir())
		return nil, errors.Wrapf(err, "error while creating volume path '%s'", v.path)
	}
	if mo != nil {
		if err := writeOpts(v.dir(), mo); err != nil {
			_ = os.RemoveAll(v.dir())
			return nil, err
		}
		v.opts = mo
	}
	if fi, err := os.Stat(v.dir()); err == nil {
		v.createdAt = ctime(fi)
	} else {
		v.createdAt = time.Now()
	}
	r.mu.Lock()
	r.volumes[name] = v
	r.mu.Unlock()
	return v, nil
}

func (r *Root) lookup(name string) *localVolume {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.volumes[name]
}

// Get finds a volume; NotFound when there is none.
func (r *Root) Get(_ context.Context, name string) (volume.Volume, error) {
	if v := r.lookup(name); v != nil {
		return v, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("no such volume")
}

// List returns every volume, sorted by name.
func (r *Root) List(context.Context) ([]volume.Volume, error) {
	r.mu.RLock()
	out := make([]volume.Volume, 0, len(r.volumes))
	for _, v := range r.volumes {
		out = append(out, v)
	}
	r.mu.RUnlock()
	// Unsorted: the volume service sorts what it lists, once, over every driver.
	return out, nil
}

// Remove deletes a volume and its data. A volume with active mounts is refused; an adopted mount that
// nobody uses is unmounted first.
func (r *Root) Remove(ctx context.Context, vol volume.Volume) error {
	name := vol.Name()
	r.locks.Lock(name)
	defer r.locks.Unlock(name)
	v := r.lookup(name)
	if v == nil {
		return errdefs.ErrNotFound.WithMessage("no such volume")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.activeCount() > 0 {
		return errors.New("volume has active mounts")
	}
	if v.mounted {
		if err := unmount(v.path); err != nil {
			return errors.Wrapf(err, "error while removing volume %s", name)
		}
		v.mounted = false
	}
	dir := v.dir()
	// Never delete anything but a direct child of the root, whatever the name says.
	if filepath.Dir(dir) != r.path || filepath.Base(dir) != name {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("unable to remove a directory outside of the local volume root %s: %s", r.path, dir))
	}
	trash := filepath.Join(r.path, trashDir)
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return errors.Wrapf(err, "error while removing volume %s", name)
	}
	// The name is cut so that name and suffix fit in NAME_MAX even for the longest volume name.
	tmp := filepath.Join(trash, name[:min(len(name), MaxNameLength-20)]+"-"+randomSuffix())
	if err := os.Rename(dir, tmp); err != nil {
		if !os.IsNotExist(err) {
			return errors.Wrapf(err, "error while removing volume %s", name)
		}
	} else if err := os.RemoveAll(tmp); err != nil {
		log.G(ctx).WithError(err).WithField("volume", name).Warn("local volume: data left in trash")
	}
	r.mu.Lock()
	delete(r.volumes, name)
	r.mu.Unlock()
	return nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ctime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}

// readOpts loads opts.json; a volume without it has no options.
func readOpts(dir string) (*mountOpts, error) {
	b, err := os.ReadFile(filepath.Join(dir, optsFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var mo mountOpts
	if err := json.Unmarshal(b, &mo); err != nil {
		return nil, err
	}
	if mo.MountType == "" && mo.MountDevice == "" && mo.MountOpts == "" && mo.Quota.Size == 0 {
		return nil, nil
	}
	return &mo, nil
}

// writeOpts writes opts.json atomically: temp file, fsync, rename, fsync of the directory.
func writeOpts(dir string, mo *mountOpts) error {
	b, err := json.Marshal(mo)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+optsFile+"-")
	if err != nil {
		return errors.Wrap(err, "error while persisting volume options")
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err == nil {
		if _, err = f.Write(b); err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, optsFile))
		}
		if err == nil {
			if d, derr := os.Open(dir); derr == nil {
				_ = d.Sync()
				d.Close()
			}
			return nil
		}
		return errors.Wrap(err, "error while persisting volume options")
	} else {
		f.Close()
		return errors.Wrap(err, "error while persisting volume options")
	}
}

// maskPassword hides a CIFS/NFS password in a mount data string shown in an error.
func maskPassword(data string) string {
	parts := strings.Split(data, ",")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && (k == "password" || k == "pass") {
			parts[i] = k + "=********"
		}
	}
	return strings.Join(parts, ",")
}
