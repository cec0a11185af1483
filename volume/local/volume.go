package local

import (
	"context"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berthd/volume"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/docker/go-units"
	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

// mountOpts is the opts.json format (dockerd's, so a data root can move between the daemons).
type mountOpts struct {
	MountType   string `json:"MountType"`
	MountOpts   string `json:"MountOpts"`
	MountDevice string `json:"MountDevice"`
	Quota       struct {
		Size uint64 `json:"Size"`
	} `json:"Quota"`
}

func (mo *mountOpts) needsMount() bool {
	return mo != nil && (mo.MountType != "" || mo.MountDevice != "")
}

// validOpts are the option keys the local driver accepts.
var validOpts = []string{"device", "o", "size", "type"}

// parseOpts validates driver options at create time, so a bad set fails `volume create`, not the first use.
func parseOpts(opts map[string]string) (*mountOpts, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(validOpts, k) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(
				`invalid option: "` + k + `" (valid options: ` + strings.Join(validOpts, ", ") + `)`)
		}
	}
	typ, dev, o := opts["type"], opts["device"], opts["o"]
	if dev != "" && typ == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(`missing required option: "type"`)
	}
	if typ != "" && dev == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(`missing required option: "device"`)
	}
	if o != "" && typ == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(`missing required option: "type"`)
	}
	mo := &mountOpts{MountType: typ, MountDevice: dev, MountOpts: o}
	if s, ok := opts["size"]; ok {
		size, err := units.RAMInBytes(s)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid size: " + err.Error())
		}
		if size > 0 {
			// No project-quota support: refuse rather than silently ignore a limit.
			return nil, errdefs.ErrInvalidArgument.WithMessage("quota size requested but no quota support")
		}
	}
	if typ == "cifs" && strings.Contains(dev, "://") {
		if host := strings.SplitN(strings.SplitN(dev, "://", 2)[1], "/", 2)[0]; strings.Contains(host, ":") {
			return nil, errdefs.ErrInvalidArgument.WithMessage("port not allowed in CIFS device URL, include 'port' in 'o='")
		}
	}
	return mo, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// localVolume is one volume of the local driver.
type localVolume struct {
	root      *Root
	name      string
	path      string // <root>/<name>/_data
	createdAt time.Time

	mu      sync.Mutex
	opts    *mountOpts
	mounted bool
	// active counts mounts per holder ID, so that an Unmount with an unknown ID (or one too many) can
	// never drive the count below zero.
	active map[string]int
}

var (
	_ volume.Volume       = (*localVolume)(nil)
	_ volume.LiveRestorer = (*localVolume)(nil)
)

func (v *localVolume) dir() string                   { return filepath.Dir(v.path) }
func (v *localVolume) Name() string                  { return v.name }
func (v *localVolume) DriverName() string            { return volume.DefaultDriverName }
func (v *localVolume) Path() string                  { return v.path }
func (v *localVolume) CreatedAt() (time.Time, error) { return v.createdAt, nil }
func (v *localVolume) Status() map[string]any        { return nil }
func (v *localVolume) activeCount() (n int) {
	for _, c := range v.active {
		n += c
	}
	return n
}

// Options returns the options the volume was created with, as the user gave them (nil for none).
func (v *localVolume) Options() map[string]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.opts == nil {
		return nil
	}
	m := map[string]string{}
	if v.opts.MountType != "" {
		m["type"] = v.opts.MountType
	}
	if v.opts.MountDevice != "" {
		m["device"] = v.opts.MountDevice
	}
	if v.opts.MountOpts != "" {
		m["o"] = v.opts.MountOpts
	}
	return m
}

// Mount mounts the configured filesystem on first use and counts the holder.
func (v *localVolume) Mount(ctx context.Context, id string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.opts.needsMount() && !v.mounted {
		if err := v.mount(ctx); err != nil {
			return "", err
		}
		v.mounted = true
	}
	v.active[id]++
	return v.path, nil
}

// Unmount drops the holder's mount and unmounts on the last one. An ID that holds nothing is a no-op.
func (v *localVolume) Unmount(ctx context.Context, id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.active[id] == 0 {
		log.G(ctx).WithFields(log.Fields{"volume": v.name, "id": id}).Debug("local volume: unmount without a matching mount")
		return nil
	}
	v.active[id]--
	if v.active[id] == 0 {
		delete(v.active, id)
	}
	if v.activeCount() == 0 && v.mounted && v.opts.needsMount() {
		if err := unmount(v.path); err != nil {
			v.active[id]++
			return errors.Wrapf(err, "error while unmounting volume %s", v.name)
		}
		v.mounted = false
	}
	return nil
}

// LiveRestoreVolume counts a mount that survived a daemon restart, mounting only if it is gone.
func (v *localVolume) LiveRestoreVolume(ctx context.Context, id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.opts.needsMount() && !v.mounted {
		if err := v.mount(ctx); err != nil {
			return err
		}
		v.mounted = true
	}
	v.active[id]++
	return nil
}

func (v *localVolume) mount(ctx context.Context) error {
	flags, data := parseMountOptions(v.opts.MountOpts)
	if v.opts.MountType == "nfs" {
		data = resolveAddr(ctx, data)
	}
	if flags&unix.MS_BIND != 0 {
		// A bind source given by a client is still confined to what root could see; dockerd allows it too.
		if !filepath.IsAbs(v.opts.MountDevice) {
			return errdefs.ErrInvalidArgument.WithMessage("bind mount device must be an absolute path")
		}
	}
	if err := unix.Mount(v.opts.MountDevice, v.path, v.opts.MountType, uintptr(flags), data); err != nil {
		return errors.Errorf("failed to mount local volume: mount %s:%s, data: %s: %v",
			v.opts.MountDevice, v.path, maskPassword(data), err)
	}
	return nil
}

func unmount(path string) error {
	if err := unix.Unmount(path, 0); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return err
	}
	return nil
}

var mountFlags = map[string]struct {
	clear bool
	flag  int
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "mand": {false, unix.MS_MANDLOCK},
	"nomand": {true, unix.MS_MANDLOCK}, "dirsync": {false, unix.MS_DIRSYNC},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"remount": {false, unix.MS_REMOUNT}, "defaults": {false, 0},
}

// parseMountOptions splits an `o=` string into mount(2) flags and filesystem data, as mount(8) does.
func parseMountOptions(o string) (int, string) {
	var flags int
	var data []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, opt)
	}
	return flags, strings.Join(data, ",")
}

// resolveAddr turns an NFS addr=<host> into an IP: the kernel client does not resolve names.
func resolveAddr(ctx context.Context, data string) string {
	parts := strings.Split(data, ",")
	for i, p := range parts {
		if k, host, ok := strings.Cut(p, "="); ok && k == "addr" && net.ParseIP(host) == nil {
			if ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host); err == nil && len(ips) > 0 {
				parts[i] = "addr=" + ips[0].String()
			}
		}
	}
	return strings.Join(parts, ",")
}
