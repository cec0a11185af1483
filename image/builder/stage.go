package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	ctypes "github.com/berthd/berthd/api/types/container"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/pkg/errors"
)

var defaultShell = []string{"/bin/sh", "-c"}

// stage is the state of the stage being built.
type stage struct {
	name string
	// imageID is the current image; parent is what a commit records as parent ("" while the stage from
	// scratch has no image yet); base is what intermediate containers are created from.
	imageID, parent, base string
	cfg                   *imagetypes.ContainerConfig
	author                string
	args                  stageArgs
	cmdSet                bool
	cacheBusted           bool
}

func copyConfig(c *imagetypes.ContainerConfig) *imagetypes.ContainerConfig {
	n := &imagetypes.ContainerConfig{}
	if c == nil {
		return n
	}
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, n)
	return n
}

func (s *stage) shell() []string {
	if len(s.cfg.Shell) > 0 {
		return s.cfg.Shell
	}
	return defaultShell
}

// env is what words are expanded with: the stage's ENV, then its ARGs that ENV does not set.
func (s *stage) env(given map[string]*string) []string {
	return append(append([]string(nil), s.cfg.Env...), s.args.envFor(s.cfg.Env, given)...)
}

func (r *run) runStage(ctx context.Context, idx int) (*stage, error) {
	st := &r.stages[idx]
	r.printStep(st.SourceCode)
	s := &stage{name: st.Name}
	if err := r.from(ctx, s, st); err != nil {
		return nil, err
	}
	r.out.stream(fmt.Sprintf(" ---> %s\n", shortID(s.imageID)))
	for _, cmd := range st.Commands {
		r.printStep(commandText(cmd))
		if err := r.dispatch(ctx, s, cmd); err != nil {
			return nil, err
		}
		r.out.stream(fmt.Sprintf(" ---> %s\n", shortID(s.imageID)))
	}
	if s.imageID == "" {
		return nil, errors.New("No image was generated. Is your Dockerfile empty?")
	}
	return s, nil
}

func commandText(cmd instructions.Command) string {
	if st, ok := cmd.(fmt.Stringer); ok {
		return st.String()
	}
	return cmd.Name()
}

// from begins the stage: its base is scratch, an earlier stage or an image (pulled when missing, or
// always with pull); the base's ONBUILD triggers then run.
func (r *run) from(ctx context.Context, s *stage, st *instructions.Stage) error {
	if st.Platform != "" {
		p, _, err := r.lex.ProcessWord(st.Platform, r.args.metaEnv())
		if err != nil {
			return err
		}
		if _, err := parsePlatform(p); err != nil {
			return err
		}
	}
	name, _, err := r.lex.ProcessWord(st.BaseName, r.args.metaEnv())
	if err != nil {
		return err
	}
	if name == "" {
		return errdefs.ErrInvalidArgument.WithMessage("base name (" + st.BaseName + ") should not be blank")
	}
	if st.Name != "" {
		for i := range r.stages {
			if &r.stages[i] == st {
				break
			}
			if strings.EqualFold(r.stages[i].Name, st.Name) {
				return errors.Errorf("%s stage name already used", st.Name)
			}
		}
	}
	if strings.EqualFold(name, "scratch") {
		base, err := r.scratch(ctx)
		if err != nil {
			return err
		}
		s.base = base
		s.cfg = &imagetypes.ContainerConfig{}
		return nil
	}
	var img *Image
	if id, ok := r.stageImages[strings.ToLower(name)]; ok {
		img, err = r.b.images.Get(ctx, id)
	} else {
		img, err = r.baseImage(ctx, name)
	}
	if err != nil {
		return err
	}
	s.imageID, s.parent, s.base = img.ID, img.ID, img.ID
	s.cfg = &imagetypes.ContainerConfig{}
	if img.Config != nil && img.Config.Config != nil {
		s.cfg = copyConfig(img.Config.Config)
	}
	if len(s.cfg.Env) == 0 {
		s.cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	triggers := s.cfg.OnBuild
	s.cfg.OnBuild = nil
	if len(triggers) > 0 {
		plural := "s"
		if len(triggers) == 1 {
			plural = ""
		}
		r.out.stream(fmt.Sprintf("# Executing %d build trigger%s\n", len(triggers), plural))
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil {
				return err
			}
			for _, n := range res.AST.Children {
				cmd, err := instructions.ParseCommand(n)
				if err != nil {
					return err
				}
				if err := r.dispatch(ctx, s, cmd); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *run) baseImage(ctx context.Context, name string) (*Image, error) {
	if !r.opts.Pull {
		img, err := r.b.images.Get(ctx, name)
		if err == nil || !errdefs.IsNotFound(err) {
			return img, err
		}
	}
	if err := r.b.images.Pull(ctx, name, r.out.emit); err != nil {
		return nil, err
	}
	return r.b.images.Get(ctx, name)
}

// dispatch runs one instruction.
func (r *run) dispatch(ctx context.Context, s *stage, cmd instructions.Command) error {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		env := s.env(r.args.given)
		envs := shell.EnvsFromSlice(env)
		if err := ex.Expand(func(w string) (string, error) { v, _, err := r.lex.ProcessWord(w, envs); return v, err }); err != nil {
			return err
		}
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		msg := "ENV"
		for _, kv := range c.Env {
			s.cfg.Env = image.SetEnv(s.cfg.Env, kv.Key, kv.Value)
			msg += " " + kv.Key + "=" + kv.Value
		}
		return r.commitMeta(ctx, s, msg)
	case *instructions.LabelCommand:
		msg := "LABEL"
		if s.cfg.Labels == nil {
			s.cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			s.cfg.Labels[kv.Key] = kv.Value
			msg += " " + kv.Key + "=" + kv.Value
		}
		return r.commitMeta(ctx, s, msg)
	case *instructions.MaintainerCommand:
		s.author = c.Maintainer
		return r.commitMeta(ctx, s, "MAINTAINER "+c.Maintainer)
	case *instructions.ExposeCommand:
		ports, err := exposedPorts(c.Ports)
		if err != nil {
			return err
		}
		if s.cfg.ExposedPorts == nil {
			s.cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			s.cfg.ExposedPorts[p] = struct{}{}
		}
		return r.commitMeta(ctx, s, "EXPOSE "+strings.Join(ports, " "))
	case *instructions.UserCommand:
		s.cfg.User = c.User
		return r.commitMeta(ctx, s, "USER "+c.User)
	case *instructions.VolumeCommand:
		if s.cfg.Volumes == nil {
			s.cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			v = strings.TrimSpace(v)
			if v == "" {
				return errdefs.ErrInvalidArgument.WithMessage("VOLUME specified can not be an empty string")
			}
			s.cfg.Volumes[v] = struct{}{}
		}
		return r.commitMeta(ctx, s, fmt.Sprintf("VOLUME %v", c.Volumes))
	case *instructions.StopSignalCommand:
		if err := validSignal(c.Signal); err != nil {
			return err
		}
		s.cfg.StopSignal = c.Signal
		return r.commitMeta(ctx, s, "STOPSIGNAL "+c.Signal)
	case *instructions.ShellCommand:
		s.cfg.Shell = append([]string(nil), c.Shell...)
		return r.commitMeta(ctx, s, fmt.Sprintf("SHELL %v", c.Shell))
	case *instructions.OnbuildCommand:
		s.cfg.OnBuild = append(s.cfg.OnBuild, c.Expression)
		return r.commitMeta(ctx, s, "ONBUILD "+c.Expression)
	case *instructions.CmdCommand:
		s.cfg.Cmd = r.shellForm(s, c.ShellDependantCmdLine)
		s.cmdSet = true
		return r.commitMeta(ctx, s, fmt.Sprintf("CMD %q", s.cfg.Cmd))
	case *instructions.EntrypointCommand:
		s.cfg.Entrypoint = r.shellForm(s, c.ShellDependantCmdLine)
		if !s.cmdSet {
			s.cfg.Cmd = nil
		}
		return r.commitMeta(ctx, s, fmt.Sprintf("ENTRYPOINT %q", s.cfg.Entrypoint))
	case *instructions.HealthCheckCommand:
		if s.cfg.Healthcheck != nil && len(s.cfg.Healthcheck.Test) > 0 {
			r.out.stream(fmt.Sprintf("Note: overriding previous HEALTHCHECK: %v\n", s.cfg.Healthcheck.Test))
		}
		h := c.Health
		s.cfg.Healthcheck = &imagetypes.HealthConfig{Test: h.Test, Interval: int64(h.Interval), Timeout: int64(h.Timeout), StartPeriod: int64(h.StartPeriod), StartInterval: int64(h.StartInterval), Retries: h.Retries}
		return r.commitMeta(ctx, s, "HEALTHCHECK "+healthText(c.Health))
	case *instructions.ArgCommand:
		var parts []string
		for _, kv := range c.Args {
			def := kv.Value
			if def == nil {
				if mv, ok := r.args.meta[kv.Key]; ok {
					def = mv
				}
			}
			s.args.set(kv.Key, r.args.value(kv.Key, def))
			if kv.Value != nil {
				parts = append(parts, kv.Key+"="+*kv.Value)
			} else {
				parts = append(parts, kv.Key)
			}
		}
		return r.commitMeta(ctx, s, "ARG "+strings.Join(parts, " "))
	case *instructions.WorkdirCommand:
		return r.workdir(ctx, s, c.Path)
	case *instructions.RunCommand:
		return r.runCmd(ctx, s, c)
	case *instructions.CopyCommand:
		return r.copyCmd(ctx, s, copyRequest{src: c.SourcePaths, dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod})
	case *instructions.AddCommand:
		return r.copyCmd(ctx, s, copyRequest{add: true, src: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod})
	}
	return errdefs.ErrNotImplemented.WithMessage("instruction not supported by the classic builder: " + cmd.Name())
}

func (r *run) shellForm(s *stage, c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string(nil), s.shell()...), strings.Join(c.CmdLine, " "))
	}
	return append([]string(nil), c.CmdLine...)
}

// nopConfig is the probe and container config of a step that runs nothing: dockerd's "#(nop)" Cmd.
func nopConfig(s *stage, comment string, split bool) *imagetypes.ContainerConfig {
	c := copyConfig(s.cfg)
	if split {
		c.Cmd = append(append([]string(nil), s.shell()...), "#(nop) ", comment)
	} else {
		c.Cmd = append(append([]string(nil), s.shell()...), "#(nop) "+comment)
	}
	return c
}

// commitMeta commits a metadata-only step as dockerd does: through a created, never started container.
func (r *run) commitMeta(ctx context.Context, s *stage, comment string) error {
	return r.commitStep(ctx, s, nopConfig(s, comment, true), true, nil)
}

// commitStep is the cache probe, then container create, an optional action on it, commit and removal.
// announce prints the container's "Running in" line (metadata and RUN steps; not COPY).
func (r *run) commitStep(ctx context.Context, s *stage, probe *imagetypes.ContainerConfig, announce bool, act func(ctx context.Context, id string) error) error {
	if hit, err := r.probe(ctx, s, probe); err != nil || hit {
		return err
	}
	cc := toContainerConfig(probe)
	cc.Image = s.base
	if s.imageID != "" {
		cc.Image = s.imageID
	}
	cc.Entrypoint = []string{}
	cc.Healthcheck = &ctypes.HealthConfig{Test: []string{"NONE"}}
	return r.withContainer(ctx, s, cc, announce, act, probe)
}

// withContainer creates the intermediate container, runs act, commits and removes it.
func (r *run) withContainer(ctx context.Context, s *stage, cc *ctypes.Config, announce bool, act func(ctx context.Context, id string) error, probe *imagetypes.ContainerConfig) error {
	id, warnings, err := r.b.containers.Create(ctx, cc, r.hc)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		r.out.stream(" ---> [Warning] " + w + "\n")
	}
	if announce {
		r.out.stream(fmt.Sprintf(" ---> Running in %s\n", shortID(id)))
	}
	ok := false
	defer func() {
		if !ok && (r.opts.ForceRemove || ctx.Err() != nil || !announce) {
			r.remove(context.WithoutCancel(ctx), id, announce)
		}
	}()
	if act != nil {
		if err := act(ctx, id); err != nil {
			return err
		}
	}
	probe.Image = s.imageID
	probe.Hostname = shortID(id)
	imgID, err := r.b.containers.Commit(ctx, id, Commit{Config: copyConfig(s.cfg), ContainerConfig: probe, CreatedBy: strings.Join(probe.Cmd, " "), Author: s.author, Parent: s.parent, Platform: r.platform})
	if err != nil {
		return err
	}
	ok = true
	if r.opts.Remove || r.opts.ForceRemove || !announce {
		r.remove(ctx, id, announce)
	}
	r.addChild(imgID, s.parent, probe)
	s.imageID, s.parent, s.base = imgID, imgID, imgID
	return nil
}

func (r *run) remove(ctx context.Context, id string, announce bool) {
	if err := r.b.containers.Remove(ctx, id); err != nil {
		r.out.stream(fmt.Sprintf("Removing intermediate container %s: %v\n", shortID(id), err))
		return
	}
	if announce {
		r.out.stream(fmt.Sprintf(" ---> Removed intermediate container %s\n", shortID(id)))
	}
}

func toContainerConfig(c *imagetypes.ContainerConfig) *ctypes.Config {
	n := &ctypes.Config{}
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, n)
	return n
}

// workdir makes the path absolute against the previous one and creates it in a committed container.
func (r *run) workdir(ctx context.Context, s *stage, p string) error {
	if !path.IsAbs(p) {
		base := s.cfg.WorkingDir
		if base == "" {
			base = "/"
		}
		p = path.Join(base, p)
	}
	s.cfg.WorkingDir = path.Clean(p)
	probe := nopConfig(s, "WORKDIR "+s.cfg.WorkingDir, false)
	return r.commitStep(ctx, s, probe, true, func(ctx context.Context, id string) error {
		return r.b.containers.Mkdir(ctx, id, s.cfg.WorkingDir, 0, 0)
	})
}

// exitError is a RUN's non-zero exit; the router puts its code in errorDetail.
type exitError struct {
	cmd  []string
	code int
}

func (e *exitError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.cmd, " "), e.code)
}

// ExitCode is the command's exit code.
func (e *exitError) ExitCode() int { return e.code }

func (r *run) runCmd(ctx context.Context, s *stage, c *instructions.RunCommand) error {
	cmd := r.shellForm(s, c.ShellDependantCmdLine)
	argEnv := s.args.envFor(s.cfg.Env, r.args.given)
	save := append(s.args.historyPrefix(argEnv), cmd...)
	probe := copyConfig(s.cfg)
	probe.Cmd = save
	if hit, err := r.probe(ctx, s, probe); err != nil || hit {
		return err
	}
	cc := toContainerConfig(s.cfg)
	cc.Cmd = cmd
	cc.Env = append(append([]string(nil), s.cfg.Env...), argEnv...)
	cc.Entrypoint = []string{}
	cc.Healthcheck = &ctypes.HealthConfig{Test: []string{"NONE"}}
	cc.Image = s.imageID
	if cc.Image == "" {
		cc.Image = s.base
	}
	return r.withContainer(ctx, s, cc, true, func(ctx context.Context, id string) error {
		code, err := r.b.containers.Run(ctx, id, streamWriter{o: r.out}, streamWriter{o: r.out, stderr: true})
		if err != nil {
			return err
		}
		if code != 0 {
			return &exitError{cmd: cmd, code: code}
		}
		return nil
	}, probe)
}

// probe looks for a cached image of this step; on a hit the stage moves to it.
func (r *run) probe(ctx context.Context, s *stage, probe *imagetypes.ContainerConfig) (bool, error) {
	if r.opts.NoCache || s.cacheBusted {
		return false, nil
	}
	children, err := r.children(ctx, s.parent)
	if err != nil {
		return false, err
	}
	if id := cacheMatch(children, s.parent, probe, r.platform.Architecture); id != "" {
		r.out.stream(" ---> Using cache\n")
		s.imageID, s.parent, s.base = id, id, id
		return true, nil
	}
	s.cacheBusted = true
	return false, nil
}

func healthText(h interface{}) string { return fmt.Sprintf("%q", h) }

func exposedPorts(specs []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, spec := range specs {
		proto := "tcp"
		p := spec
		if i := strings.LastIndex(spec, "/"); i >= 0 {
			p, proto = spec[:i], strings.ToLower(spec[i+1:])
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid proto: " + proto)
		}
		lo, hi, ok := strings.Cut(p, "-")
		start, err := atoiPort(lo)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid containerPort: " + p)
		}
		end := start
		if ok {
			if end, err = atoiPort(hi); err != nil || end < start {
				return nil, errdefs.ErrInvalidArgument.WithMessage("invalid containerPort: " + p)
			}
		}
		for n := start; n <= end; n++ {
			k := fmt.Sprintf("%d/%s", n, proto)
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func atoiPort(s string) (int, error) {
	n := 0
	if s == "" || len(s) > 5 {
		return 0, errors.New("bad port")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

// children are the images whose parent is parent, from one listing per build (plus what the build
// committed since), so a warm build costs one listing, not one per step.
func (r *run) children(ctx context.Context, parent string) ([]*Image, error) {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	if r.index == nil {
		all, err := r.b.images.List(ctx)
		if err != nil {
			return nil, err
		}
		r.index = map[string][]*Image{}
		for _, img := range all {
			if img.Config != nil {
				r.index[img.Config.Parent] = append(r.index[img.Config.Parent], img)
			}
		}
	}
	return r.index[parent], nil
}

func (r *run) addChild(id, parent string, probe *imagetypes.ContainerConfig) {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	if r.index == nil {
		return
	}
	now := time.Now()
	r.index[parent] = append(r.index[parent], &Image{ID: id, Config: &image.Config{Parent: parent, ContainerConfig: probe, Created: &now}})
}
