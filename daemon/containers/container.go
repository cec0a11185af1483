package containers

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/logger"
	"github.com/berthd/berthd/daemon/containers/logger/jsonfile"
	ltypes "github.com/berthd/berthd/libcontainerd/types"
	"github.com/berthd/berthd/volume/mounts"
	"github.com/pkg/errors"
)

// Container is one container: its record (persisted under <root>/<id>/) and its runtime handles.
// mu serializes lifecycle operations (start, stop, exit handling, rm); State has its own lock so reads
// (ps, inspect, wait) never wait behind a slow stop.
type Container struct {
	mu sync.Mutex

	ID         string
	Name       string // with the leading "/"
	Created    time.Time
	Path       string
	Args       []string
	Config     *ctypes.Config
	HostConfig *ctypes.HostConfig
	ImageID    string
	Driver     string
	// MountPoints by destination. The map is fixed at create; mpMu guards the fields that change while
	// the container runs (ID, Source), so ps never waits behind a start.
	mpMu                   sync.RWMutex
	MountPoints            map[string]*mounts.MountPoint
	RestartCount           int
	HasBeenStartedBefore   bool
	HasBeenManuallyStopped bool
	State                  *State

	dir string

	// Runtime only.
	task ltypes.Task
	ctr  ltypes.Container
	// runtimeDeleted: the exit handler deleted the containerd container, so removal need not look.
	runtimeDeleted bool
	// savedHostConfig is the hostconfig.json last written, so a save that does not change it skips it.
	savedHostConfig []byte
	streams         *streams
	logw            *jsonfile.Writer
	health          *healthState
	execs           map[string]*execConfig
	// restartCancel stops a pending restart-policy restart.
	restartCancel func()
	restartDelay  time.Duration
	// net is the container's network configuration (network.go).
	net *netState
	// exited is closed when the current run's exit has been handled (nil when not running).
	exited chan struct{}
	// freezes counts the copies (cp, export) that hold the container frozen; guarded by mu.
	freezes int
	// restartingByUser is set while a user's restart stops the container, so --rm does not remove it.
	restartingByUser bool
}

// record is config.v2.json.
type record struct {
	ID                     string
	Name                   string
	Created                time.Time
	Path                   string
	Args                   []string
	Config                 *ctypes.Config
	Image                  string
	Driver                 string
	MountPoints            map[string]*mounts.MountPoint
	RestartCount           int
	HasBeenStartedBefore   bool
	HasBeenManuallyStopped bool
	State                  stateRecord
	LogPath                string
}

const (
	configFile     = "config.v2.json"
	hostConfigFile = "hostconfig.json"
)

// logPath is what inspect reports as LogPath: the json-file log, "" for other drivers (as dockerd).
func (c *Container) logPath() string {
	if c.HostConfig != nil && c.HostConfig.LogConfig.Type != "" && c.HostConfig.LogConfig.Type != logger.JSONFile {
		return ""
	}
	return filepath.Join(c.dir, c.ID+"-json.log")
}
func (c *Container) hostnamePath() string { return filepath.Join(c.dir, "hostname") }
func (c *Container) hostsPath() string    { return filepath.Join(c.dir, "hosts") }
func (c *Container) resolvPath() string   { return filepath.Join(c.dir, "resolv.conf") }

// save writes the record atomically; callers hold c.mu (or own c exclusively).
func (c *Container) save() error {
	r := record{
		ID: c.ID, Name: c.Name, Created: c.Created, Path: c.Path, Args: c.Args, Config: c.Config,
		Image: c.ImageID, Driver: c.Driver, MountPoints: c.MountPoints, RestartCount: c.RestartCount,
		HasBeenStartedBefore: c.HasBeenStartedBefore, HasBeenManuallyStopped: c.HasBeenManuallyStopped,
		State: c.State.snapshot(), LogPath: c.logPath(),
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	hc, err := json.Marshal(c.HostConfig)
	if err != nil {
		return err
	}
	if !bytes.Equal(hc, c.savedHostConfig) {
		if err := writeFileAtomic(filepath.Join(c.dir, hostConfigFile), hc, 0o600); err != nil {
			return errors.Wrapf(err, "save container %s", c.ID)
		}
		c.savedHostConfig = hc
	}
	if err := writeFileAtomic(filepath.Join(c.dir, configFile), b, 0o600); err != nil {
		return errors.Wrapf(err, "save container %s", c.ID)
	}
	return nil
}

// load reads a container's record from dir.
func load(dir string) (*Container, error) {
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, errors.Wrapf(err, "decode %s", filepath.Join(dir, configFile))
	}
	hc := &ctypes.HostConfig{}
	if b, err := os.ReadFile(filepath.Join(dir, hostConfigFile)); err == nil {
		if err := json.Unmarshal(b, hc); err != nil {
			return nil, errors.Wrapf(err, "decode %s", filepath.Join(dir, hostConfigFile))
		}
	}
	if r.ID == "" || r.ID != filepath.Base(dir) {
		return nil, errors.Errorf("container record in %s has ID %q", dir, r.ID)
	}
	if r.Config == nil {
		r.Config = &ctypes.Config{}
	}
	if r.MountPoints == nil {
		r.MountPoints = map[string]*mounts.MountPoint{}
	}
	c := &Container{
		ID: r.ID, Name: r.Name, Created: r.Created, Path: r.Path, Args: r.Args, Config: r.Config,
		HostConfig: hc, ImageID: r.Image, Driver: r.Driver, MountPoints: r.MountPoints,
		RestartCount: r.RestartCount, HasBeenStartedBefore: r.HasBeenStartedBefore,
		HasBeenManuallyStopped: r.HasBeenManuallyStopped, State: &State{}, dir: dir,
		execs: map[string]*execConfig{},
	}
	c.State.restoreFrom(r.State)
	return c, nil
}

// writeFileAtomic writes through a temp file, fsync and rename, so a crash leaves the old or the new file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
