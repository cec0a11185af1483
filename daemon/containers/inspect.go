package containers

import (
	"context"
	"sort"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	"github.com/berthd/berthd/api/types/filters"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (c *Container) mountPoints() []ctypes.MountPoint {
	c.mpMu.RLock()
	defer c.mpMu.RUnlock()
	out := []ctypes.MountPoint{}
	for _, mp := range c.MountPoints {
		m := ctypes.MountPoint{
			Type: mp.Type, Name: mp.Name, Source: mp.Source, Destination: mp.Destination, Driver: mp.Driver,
			Mode: mp.ModeString(), RW: mp.RW, Propagation: mp.Propagation,
		}
		if mp.Type == ctypes.MountTypeTmpfs {
			m.Source = ""
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out
}

// Inspect is GET /containers/{id}/json.
func (s *query) Inspect(ctx context.Context, ref string, size bool) (*ctypes.InspectResponse, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.State.snapshot()
	execIDs := []string(nil)
	for id := range c.execs {
		execIDs = append(execIDs, id)
	}
	hc := *c.HostConfig
	cfg := *c.Config
	r := &ctypes.InspectResponse{
		ID: c.ID, Created: fmtTime(c.Created), Path: c.Path, Args: c.Args,
		State: &ctypes.State{
			Status: st.Status, Running: st.Running, Paused: st.Paused, Restarting: st.Restarting,
			OOMKilled: st.OOMKilled, Dead: st.Dead, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: fmtTime(st.StartedAt), FinishedAt: fmtTime(st.FinishedAt),
			Health: c.health.snapshot(),
		},
		Image: c.ImageID, ResolvConfPath: c.resolvPath(), HostnamePath: c.hostnamePath(), HostsPath: c.hostsPath(),
		LogPath: c.logPath(), Name: c.Name, RestartCount: c.RestartCount, Driver: c.Driver, Platform: "linux",
		ExecIDs: execIDs, HostConfig: &hc, Mounts: c.mountPoints(), Config: &cfg,
		GraphDriver:     ctypes.GraphDriverData{Name: c.Driver, Data: map[string]string{}},
		NetworkSettings: s.net.inspectNetwork(ctx, c, st.Running),
	}
	if r.Args == nil {
		r.Args = []string{}
	}
	if size {
		if n, err := s.layers.Size(ctx, c.ID); err == nil {
			r.SizeRw = &n
		}
		if n, err := s.layers.RootFSSize(ctx, c.ID); err == nil {
			r.SizeRootFs = &n
		}
	}
	return r, nil
}

var acceptedPsFilters = map[string]bool{
	"ancestor": true, "before": true, "exited": true, "id": true, "label": true, "name": true,
	"status": true, "since": true, "volume": true, "network": true, "is-task": true, "health": true,
	"publish": true, "expose": true, "isolation": true,
}

func (c *Container) command() string {
	cmd := c.Path
	if len(c.Args) > 0 {
		cmd += " " + strings.Join(c.Args, " ")
	}
	return cmd
}

// List is GET /containers/json.
func (s *query) List(ctx context.Context, opts ctypes.ListOptions) ([]*ctypes.Summary, error) {
	f, err := filters.FromJSON(opts.Filters)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(acceptedPsFilters); err != nil {
		return nil, err
	}
	for _, st := range f.Get("status") {
		switch st {
		case "created", "restarting", "running", "removing", "paused", "exited", "dead":
		default:
			return nil, invalidf("Unrecognised filter value for status: %s", st)
		}
	}
	all := s.list()
	sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
	var beforeT, sinceT time.Time
	for _, ref := range f.Get("before") {
		c, err := s.get(ref)
		if err != nil {
			return nil, err
		}
		beforeT = c.Created
	}
	for _, ref := range f.Get("since") {
		c, err := s.get(ref)
		if err != nil {
			return nil, err
		}
		sinceT = c.Created
	}
	if opts.Before != "" {
		if c, err := s.get(opts.Before); err == nil {
			beforeT = c.Created
		}
	}
	if opts.Since != "" {
		if c, err := s.get(opts.Since); err == nil {
			sinceT = c.Created
		}
	}
	showAll := opts.All || opts.Limit > 0 || opts.Latest || f.Len() > 0 && (f.Contains("status") || f.Contains("exited"))
	limit := opts.Limit
	if opts.Latest {
		limit = 1
	}
	out := []*ctypes.Summary{}
	for _, c := range all {
		if !beforeT.IsZero() && !c.Created.Before(beforeT) {
			continue
		}
		if !sinceT.IsZero() && !c.Created.After(sinceT) {
			continue
		}
		st := c.State.snapshot()
		if !showAll && !st.Running && !opts.All {
			continue
		}
		if !s.matches(c, f, st) {
			continue
		}
		out = append(out, s.summary(ctx, c, st, opts.Size))
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (s *query) matches(c *Container, f filters.Args, st stateRecord) bool {
	if f.Len() == 0 {
		return true
	}
	if f.Contains("id") && !f.FuzzyMatch("id", c.ID) {
		return false
	}
	if f.Contains("name") && !f.Match("name", strings.TrimPrefix(c.Name, "/")) && !f.Match("name", c.Name) {
		return false
	}
	if f.Contains("label") && !f.MatchKVList("label", c.Config.Labels) {
		return false
	}
	if f.Contains("status") && !f.ExactMatch("status", st.Status) {
		return false
	}
	if f.Contains("exited") {
		if st.Running || st.StartedAt.IsZero() || !f.ExactMatch("exited", itoa(st.ExitCode)) {
			return false
		}
	}
	if f.Contains("ancestor") {
		ok := false
		for _, a := range f.Get("ancestor") {
			if a == c.Config.Image || a+":latest" == c.Config.Image || a == c.Config.Image+":latest" ||
				strings.HasPrefix(strings.TrimPrefix(c.ImageID, "sha256:"), strings.TrimPrefix(a, "sha256:")) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Contains("volume") {
		ok := false
		c.mpMu.RLock()
		defer c.mpMu.RUnlock()
		for _, mp := range c.MountPoints {
			if f.ExactMatch("volume", mp.Name) || f.ExactMatch("volume", mp.Destination) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Contains("network") && !s.net.onNetwork(c, f) {
		return false
	}
	if f.Contains("health") {
		hs := "none"
		if c.health != nil {
			hs = c.health.statusString()
		}
		if !f.ExactMatch("health", hs) {
			return false
		}
	}
	if f.Contains("is-task") {
		if v, _ := f.GetBoolOrDefault("is-task", false); v {
			return false
		}
	}
	return true
}

func (s *query) summary(ctx context.Context, c *Container, st stateRecord, size bool) *ctypes.Summary {
	sum := &ctypes.Summary{
		ID: c.ID, Names: []string{c.Name}, Image: c.Config.Image, ImageID: c.ImageID, Command: c.command(),
		Created: c.Created.Unix(), Ports: []ctypes.Port{}, Labels: c.Config.Labels, State: st.Status,
		Status:     c.State.String() + healthSuffix(c, st),
		HostConfig: ctypes.SummaryHostConfig{NetworkMode: c.HostConfig.NetworkMode},
		Mounts:     c.mountPoints(),
	}
	nets, _, ports := s.net.networkSettings(ctx, c, st.Running)
	sum.NetworkSettings = &ctypes.SummaryNetworkSettings{Networks: nets}
	if ports != nil {
		sum.Ports = ports
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	if size {
		if n, err := s.layers.Size(ctx, c.ID); err == nil {
			sum.SizeRw = n
		}
		if n, err := s.layers.RootFSSize(ctx, c.ID); err == nil {
			sum.SizeRootFs = n
		}
	}
	return sum
}

// healthSuffix is the health part of `docker ps` STATUS.
func healthSuffix(c *Container, st stateRecord) string {
	if !st.Running || c.health == nil {
		return ""
	}
	switch hs := c.health.statusString(); hs {
	case healthStarting:
		return " (health: starting)"
	case "":
		return ""
	default:
		return " (" + hs + ")"
	}
}

// Prune removes stopped containers (POST /containers/prune) matching `until` and `label` filters.
func (s *query) Prune(ctx context.Context, filtersJSON string) (*ctypes.PruneReport, error) {
	f, err := filters.FromJSON(filtersJSON)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(map[string]bool{"until": true, "label": true, "label!": true}); err != nil {
		return nil, err
	}
	rep := &ctypes.PruneReport{ContainersDeleted: []string{}}
	for _, c := range s.list() {
		if c.State.IsRunning() || c.State.IsRestarting() {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", c.Config.Labels) {
			continue
		}
		if f.Contains("label!") && f.MatchKVList("label!", c.Config.Labels) {
			continue
		}
		if us := f.Get("until"); len(us) > 0 {
			t, err := parseTimestamp(us[0])
			if err != nil {
				return nil, err
			}
			if !c.Created.Before(t) {
				continue
			}
		}
		size, _ := s.layers.Size(ctx, c.ID)
		if err := s.life.remove(ctx, c, false, false); err != nil {
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	if s.events != nil {
		s.events.Log("prune", "container", eventActor(rep.SpaceReclaimed))
	}
	return rep, nil
}
