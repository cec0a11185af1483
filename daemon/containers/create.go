package containers

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/daemon/containers/logger"
	"github.com/berthd/berthd/daemon/network"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/volume/mounts"
	volumeservice "github.com/berthd/berthd/volume/service"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

func invalidf(format string, a ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
}

// validateHostConfig applies dockerd's create-time checks.
func validateHostConfig(hc *ctypes.HostConfig) error {
	rp := hc.RestartPolicy
	switch rp.Name {
	case "", ctypes.RestartPolicyDisabled, ctypes.RestartPolicyAlways, ctypes.RestartPolicyUnlessStopped:
		if rp.MaximumRetryCount != 0 {
			return invalidf("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case ctypes.RestartPolicyOnFailure:
		if rp.MaximumRetryCount < 0 {
			return invalidf("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return invalidf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", rp.Name)
	}
	if hc.AutoRemove && rp.Name != "" && rp.Name != ctypes.RestartPolicyDisabled {
		return invalidf("can't create 'AutoRemove' container with restart policy")
	}
	if hc.Memory < 0 || hc.Memory > 0 && hc.Memory < 6*1024*1024 {
		return invalidf("Minimum memory limit allowed is 6MB")
	}
	if hc.MemorySwap > 0 && hc.Memory > 0 && hc.MemorySwap < hc.Memory {
		return invalidf("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if hc.NanoCPUs < 0 {
		return invalidf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if hc.NanoCPUs > 0 && hc.NanoCPUs > int64(numCPU())*1e9 {
		return invalidf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if hc.NanoCPUs > 0 && (hc.CPUQuota > 0 || hc.CPUPeriod > 0) {
		return invalidf("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if hc.ShmSize < 0 {
		return invalidf("SHM size can not be less than 0")
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return invalidf("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.LogConfig.Type != "" {
		if err := logger.Validate(hc.LogConfig.Type, hc.LogConfig.Config); err != nil {
			return invalidf("%s", err.Error())
		}
	}
	for _, m := range []string{hc.IpcMode, hc.UTSMode} {
		switch m {
		case "", "host", "private", "shareable", "none":
		default:
			return invalidf("invalid namespace mode: %s (only host and private are supported)", m)
		}
	}
	if err := validatePidMode(hc.PidMode); err != nil {
		return err
	}
	if err := validateCgroupns(hc); err != nil {
		return err
	}
	if err := validateTmpfs(hc.Tmpfs); err != nil {
		return err
	}
	if err := validateDeviceCgroupRules(hc.DeviceCgroupRules); err != nil {
		return err
	}
	if err := validateRuntime(hc); err != nil {
		return err
	}
	if hc.IpcMode == "" {
		// The daemon's default IPC mode, as dockerd records it (old clients get theirs in the router).
		hc.IpcMode = "private"
	}
	return refuseUnsupported(hc)
}

// mergeImage fills the container config from the image's defaults, as dockerd's merge.
func mergeImage(cfg *ctypes.Config, rc *image.RunConfig) {
	if cfg.User == "" {
		cfg.User = rc.User
	}
	if len(cfg.Env) == 0 {
		cfg.Env = append([]string(nil), rc.Env...)
	} else {
		keys := map[string]bool{}
		for _, e := range cfg.Env {
			k, _, _ := strings.Cut(e, "=")
			keys[k] = true
		}
		var env []string
		for _, e := range rc.Env {
			k, _, _ := strings.Cut(e, "=")
			if !keys[k] {
				env = append(env, e)
			}
		}
		cfg.Env = append(env, cfg.Env...)
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = rc.Cmd
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = rc.Entrypoint
		}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = rc.WorkingDir
	}
	if len(rc.Volumes) > 0 {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for v := range rc.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	}
	if len(rc.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range rc.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = rc.StopSignal
	}
	if cfg.Healthcheck == nil && rc.Healthcheck != nil {
		h := rc.Healthcheck
		cfg.Healthcheck = &ctypes.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	if len(cfg.ExposedPorts) == 0 && len(rc.ExposedPorts) > 0 {
		cfg.ExposedPorts = rc.ExposedPorts
	}
	if len(cfg.Shell) == 0 {
		cfg.Shell = rc.Shell
	}
}

// withDefaultTag adds ":latest" to a reference without tag or digest.
func withDefaultTag(ref string) string {
	if strings.Contains(ref, "@") || strings.HasPrefix(ref, "sha256:") {
		return ref
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref
	}
	return ref + ":latest"
}

// CreateResult is the new container's ID and the warnings to print.
type CreateResult struct {
	ID       string
	Warnings []string
}

// Create creates a container (POST /containers/create). Nothing is left behind on failure: no record,
// RW layer or volume reference.
func (s *lifecycle) Create(ctx context.Context, name string, req *ctypes.CreateRequest) (_ CreateResult, retErr error) {
	if req == nil {
		return CreateResult{}, invalidf("config cannot be empty in order to create a container")
	}
	// Only a missing image may be a 404 at create: the CLI answers any 404 with "Unable to find image" and
	// a pull (dockerd itself gets this wrong for a missing volume driver).
	imageMissing := false
	defer func() {
		if retErr != nil && !imageMissing {
			retErr = notFoundAsInvalid(retErr)
		}
	}()
	cfg := req.Config
	hc := req.HostConfig
	if hc == nil {
		hc = &ctypes.HostConfig{}
	}
	if cfg.Image == "" {
		return CreateResult{}, invalidf("No image specified")
	}
	if name != "" {
		if err := validateName(name); err != nil {
			return CreateResult{}, err
		}
	}
	if err := validateConfig(&cfg); err != nil {
		return CreateResult{}, err
	}
	if err := s.checkReferences(hc); err != nil {
		return CreateResult{}, err
	}
	s.cfg.Defaults.apply(hc)
	if err := validateHostConfig(hc); err != nil {
		return CreateResult{}, err
	}
	if err := applySecurityOpts(s.cfg.Security, hc); err != nil {
		return CreateResult{}, err
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = ctypes.RestartPolicyDisabled
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		// 0 and -1 (any negative value) mean no limit, which dockerd records as none.
		hc.PidsLimit = nil
	}
	tr := newStepTrace(ctx, "container create")
	defer tr.done()
	rc, err := s.images.RunConfig(ctx, cfg.Image)
	tr.step("image")
	if err != nil {
		if errdefs.IsNotFound(err) {
			// dockerd names the tagged reference, and the CLI pulls on this 404.
			imageMissing = true
			return CreateResult{}, errdefs.ErrNotFound.WithMessage("No such image: " + withDefaultTag(cfg.Image))
		}
		return CreateResult{}, err
	}
	if err := checkPlatform(cfg.Image, req.Platform, rc); err != nil {
		imageMissing = true
		return CreateResult{}, err
	}
	mergeImage(&cfg, rc)
	nets, err := s.net.prepareNetworks(ctx, hc, &cfg, req.NetworkingConfig)
	if err != nil {
		return CreateResult{}, err
	}
	tr.step("networks")
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return CreateResult{}, invalidf("No command specified")
	}
	if cfg.WorkingDir != "" && !path.IsAbs(cfg.WorkingDir) {
		return CreateResult{}, invalidf("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	if cfg.WorkingDir != "" {
		cfg.WorkingDir = path.Clean(cfg.WorkingDir)
	}
	if _, err := signalFromString(cfg.StopSignal); cfg.StopSignal != "" && err != nil {
		return CreateResult{}, err
	}
	id := newID()
	if name != "" {
		name = "/" + strings.TrimPrefix(name, "/")
		if err := s.reserveName(name, id); err != nil {
			return CreateResult{}, err
		}
	} else if name, err = s.generateName(id); err != nil {
		return CreateResult{}, err
	}
	defer func() {
		if retErr != nil {
			s.releaseName(name)
		}
	}()
	if cfg.Hostname == "" {
		if hc.NetworkMode == "host" {
			cfg.Hostname, _ = os.Hostname()
		} else {
			cfg.Hostname = id[:12]
		}
	}
	full := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	c := &Container{
		ID: id, Name: name, Created: time.Now().UTC(), Path: full[0], Args: full[1:],
		Config: &cfg, HostConfig: hc, ImageID: string(rc.ID), Driver: s.layers.Snapshotter(),
		MountPoints: map[string]*mounts.MountPoint{}, State: &State{}, dir: filepath.Join(s.cfg.Root, id),
		execs: map[string]*execConfig{},
	}
	c.streams = newStreams(cfg.OpenStdin)
	ctx = logCtx(ctx, c)

	mps, err := s.parseMounts(c)
	if err != nil {
		return CreateResult{}, err
	}
	if err := os.Mkdir(c.dir, 0o710); err != nil {
		return CreateResult{}, err
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(c.dir)
		}
	}()
	tr.step("names")
	// The RW layer (containerd round trips, each a metadata commit) is prepared while the container's
	// own files are written; both are done before volumes, which may copy image content into the layer.
	prepared := make(chan error, 1)
	go func() {
		_, err := s.layers.Prepare(ctx, id, rc.ChainID, nil)
		prepared <- err
	}()
	var layerErr error
	layerWaited := false
	waitLayer := func() error {
		if !layerWaited {
			layerErr, layerWaited = <-prepared, true
		}
		return layerErr
	}
	defer func() {
		if retErr != nil && waitLayer() == nil {
			if err := s.layers.Remove(context.WithoutCancel(ctx), id); err != nil {
				log.G(ctx).WithError(err).Warn("remove RW layer after failed create")
			}
		}
	}()
	if err := s.writeNetFiles(c, nets); err != nil {
		return CreateResult{}, err
	}
	tr.step("netfiles")
	if err := waitLayer(); err != nil {
		return CreateResult{}, err
	}
	tr.step("layer")
	// Registered first: a failure half-way through must release what was already referenced.
	defer func() {
		if retErr != nil {
			s.releaseVolumes(context.WithoutCancel(ctx), c, true)
		}
	}()
	if err := s.createVolumes(ctx, c, mps); err != nil {
		return CreateResult{}, err
	}
	if err := s.fs.copyImageContent(ctx, c); err != nil {
		return CreateResult{}, err
	}
	tr.step("volumes")
	if err := c.save(); err != nil {
		return CreateResult{}, err
	}
	tr.step("files")
	s.mu.Lock()
	s.byID[id] = c
	s.mu.Unlock()
	s.logEvent(c, "create", nil)
	var warnings []string
	if hc.NetworkMode == "host" && (len(hc.PortBindings) > 0 || hc.PublishAllPorts) {
		warnings = append(warnings, "Published ports are discarded when using host network mode")
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 && !hasSwapAccounting() {
		warnings = append(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
	}
	return CreateResult{ID: id, Warnings: warnings}, nil
}

// writeNetFiles writes the container's resolv.conf, hosts and hostname and its network record.
func (s *lifecycle) writeNetFiles(c *Container, nets map[string]*ctypes.EndpointSettings) error {
	cfg, hc := c.Config, c.HostConfig
	var gw []netip.Addr
	dnsServers, dnsSearch, dnsOpts := hc.DNS, hc.DNSSearch, hc.DNSOptions
	if s.cfg.Networks != nil {
		gw = s.cfg.Networks.HostGatewayIPs()
		// The container's settings override the daemon's, each on its own.
		d, se, o := s.cfg.Networks.ResolvDefaults()
		if len(dnsServers) == 0 {
			dnsServers = d
		}
		if len(dnsSearch) == 0 {
			dnsSearch = se
		}
		if len(dnsOpts) == 0 {
			dnsOpts = o
		}
	}
	if err := network.WriteFiles(c.dir, network.FilesConfig{HostGateway: gw,
		Hostname: cfg.Hostname, Domainname: cfg.Domainname, Mode: hc.NetworkMode,
		ExtraHosts: hc.ExtraHosts, DNS: dnsServers, DNSSearch: dnsSearch, DNSOptions: dnsOpts,
	}); err != nil {
		return err
	}
	c.netConfig().Networks = nets
	return c.saveNet()
}

// parseMounts turns Binds, Mounts, Config.Volumes and VolumesFrom into mount points by destination.
// User mounts win over image volumes; two user mounts on one destination are an error.
func (s *lifecycle) parseMounts(c *Container) (map[string]*mounts.MountPoint, error) {
	hc := c.HostConfig
	out := map[string]*mounts.MountPoint{}
	user := map[string]bool{}
	add := func(mp *mounts.MountPoint) error {
		if user[mp.Destination] {
			return invalidf("Duplicate mount point: %s", mp.Destination)
		}
		user[mp.Destination] = true
		out[mp.Destination] = mp
		return nil
	}
	for _, from := range hc.VolumesFrom {
		ref, mode, err := mounts.ParseVolumesFrom(from)
		if err != nil {
			return nil, err
		}
		src, err := s.get(ref)
		if err != nil {
			return nil, notFoundAsInvalid(err)
		}
		src.mu.Lock()
		for _, mp := range src.MountPoints {
			if mp.Type == ctypes.MountTypeTmpfs {
				continue
			}
			cp := *mp
			cp.ID, cp.Anonymous, cp.CopyData = "", false, false
			if mode == "ro" {
				cp.RW = false
			} else if mode == "rw" {
				cp.RW = true
			}
			out[cp.Destination] = &cp
		}
		src.mu.Unlock()
	}
	for _, b := range hc.Binds {
		mp, err := mounts.ParseBind(b, hc.VolumeDriver)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for _, m := range hc.Mounts {
		mp, err := mounts.ParseMount(m)
		if err != nil {
			return nil, err
		}
		if mp.Type == ctypes.MountTypeBind {
			if _, err := os.Stat(mp.Source); err != nil {
				if m.BindOptions == nil || !m.BindOptions.CreateMountpoint {
					return nil, invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source)
				}
			}
		}
		if mp.Type == ctypes.MountTypeVolume && mp.Driver == "" {
			mp.Driver = hc.VolumeDriver
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for d := range hc.Tmpfs {
		if user[path.Clean(d)] {
			return nil, invalidf("Duplicate mount point: %s", d)
		}
	}
	dsts := make([]string, 0, len(c.Config.Volumes))
	for d := range c.Config.Volumes {
		dsts = append(dsts, d)
	}
	sort.Strings(dsts)
	for _, d := range dsts {
		mp, err := mounts.ParseVolume(d, hc.VolumeDriver)
		if err != nil {
			return nil, err
		}
		if _, ok := out[mp.Destination]; ok {
			continue
		}
		if _, ok := hc.Tmpfs[mp.Destination]; ok {
			continue
		}
		out[mp.Destination] = mp
	}
	return out, nil
}

// createVolumes creates or gets every volume with reference = container ID, and makes -v bind sources
// that do not exist (dockerd does; --mount refuses them earlier).
func (s *lifecycle) createVolumes(ctx context.Context, c *Container, mps map[string]*mounts.MountPoint) error {
	for _, mp := range creationOrder(mps) {
		switch mp.Type {
		case ctypes.MountTypeBind:
			if mp.Spec == nil {
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					return errors.Wrapf(err, "error while creating mount source path '%s'", mp.Source)
				}
			}
		case ctypes.MountTypeVolume:
			var opts []volumeservice.CreateOption
			opts = append(opts, volumeservice.WithCreateReference(c.ID))
			if mp.Spec != nil && mp.Spec.VolumeOptions != nil {
				vo := mp.Spec.VolumeOptions
				if len(vo.Labels) > 0 {
					opts = append(opts, volumeservice.WithCreateLabels(vo.Labels))
				}
				if vo.DriverConfig != nil && len(vo.DriverConfig.Options) > 0 {
					opts = append(opts, volumeservice.WithCreateOptions(vo.DriverConfig.Options))
				}
			}
			v, err := s.volumes.Create(ctx, mp.Name, mp.Driver, opts...)
			if err != nil {
				return err
			}
			mp.Name, mp.Driver, mp.Source = v.Name, v.Driver, v.Mountpoint
		}
		c.MountPoints[mp.Destination] = mp
	}
	return nil
}

// creationOrder is the order in which a container's mounts are created: as dockerd, the -v ones (and
// image volumes) before the --mount ones, so that a --mount that fails (an unknown driver, say) always
// finds the -v volumes created, and releases them, rather than depending on map order.
func creationOrder(mps map[string]*mounts.MountPoint) []*mounts.MountPoint {
	out := make([]*mounts.MountPoint, 0, len(mps))
	for _, mp := range mps {
		out = append(out, mp)
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].Spec != nil, out[j].Spec != nil; a != b {
			return !a
		}
		return out[i].Destination < out[j].Destination
	})
	return out
}

// releaseVolumes drops the container's references; with removeAnonymous its anonymous volumes are removed
// (in-use errors ignored: another container may have them through --volumes-from).
func (s *lifecycle) releaseVolumes(ctx context.Context, c *Container, removeAnonymous bool) {
	for _, mp := range c.MountPoints {
		if mp.Type != ctypes.MountTypeVolume || mp.Name == "" {
			continue
		}
		if err := s.volumes.Release(ctx, mp.Name, c.ID); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("volume", mp.Name).Warn("release volume")
		}
		if removeAnonymous && mp.Anonymous {
			if err := s.volumes.Remove(ctx, mp.Name); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
				log.G(ctx).WithError(err).WithField("volume", mp.Name).Warn("remove anonymous volume")
			}
		}
	}
}
