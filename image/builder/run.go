package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	buildtypes "github.com/berthd/berthd/api/types/build"
	ctypes "github.com/berthd/berthd/api/types/container"
	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pkg/errors"
)

// run is one build in progress.
type run struct {
	b        *Builder
	opts     buildtypes.Options
	bc       *buildContext
	out      *output
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	lex      *shell.Lex
	args     *buildArgs
	hc       *ctypes.HostConfig
	platform ocispec.Platform

	total, step int
	// stageImages maps stage names (lower case) and indexes to their final image IDs.
	stageImages map[string]string

	indexMu sync.Mutex
	index   map[string][]*Image

	scratchMu      sync.Mutex
	scratchID      string
	scratchRelease func(context.Context)
}

// prepare parses the Dockerfile and checks the request before any output: errors here are request errors.
func (b *Builder) prepare(ctx context.Context, opts buildtypes.Options, bc *buildContext, out Output) (*run, error) {
	r := &run{b: b, opts: opts, bc: bc, out: newOutput(out, opts.Quiet), stageImages: map[string]string{}}
	r.platform = platforms.Normalize(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if opts.Platform != "" {
		p, err := parsePlatform(opts.Platform)
		if err != nil {
			return nil, err
		}
		r.platform = p
	}
	res, err := parser.Parse(bytes.NewReader(bc.dockerfile))
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse %s: %v", bc.dockerfileName, err))
	}
	r.lex = shell.NewLex(res.EscapeToken)
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if len(stages) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("No image was generated. Is your Dockerfile empty?")
	}
	if opts.Target != "" {
		i, ok := instructions.HasStage(stages, opts.Target)
		if !ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("target stage %q could not be found", opts.Target))
		}
		stages = stages[:i+1]
	}
	if err := checkUnsupported(stages); err != nil {
		return nil, err
	}
	if len(opts.Labels) > 0 {
		keys := make([]string, 0, len(opts.Labels))
		for k := range opts.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		last := &stages[len(stages)-1]
		for _, k := range keys {
			last.AddCommand(instructions.NewLabelCommand(k, opts.Labels[k], true))
		}
	}
	r.stages, r.metaArgs = stages, metaArgs
	r.total = len(metaArgs)
	for _, s := range stages {
		r.total += 1 + len(s.Commands)
	}
	r.args = newBuildArgs(opts.BuildArgs)
	r.hc = hostConfig(opts)
	return r, nil
}

// checkUnsupported refuses, before anything runs, the BuildKit-only flags the classic builder refuses.
func checkUnsupported(stages []instructions.Stage) error {
	for _, s := range stages {
		for _, c := range s.Commands {
			switch c := c.(type) {
			case *instructions.RunCommand:
				if len(c.FlagsUsed) > 0 {
					return errBuildKitFlag(c.FlagsUsed[0])
				}
				if len(c.Files) > 0 {
					return errdefs.ErrInvalidArgument.WithMessage("heredocs require BuildKit")
				}
			case *instructions.CopyCommand:
				if len(c.SourceContents) > 0 {
					return errdefs.ErrInvalidArgument.WithMessage("heredocs require BuildKit")
				}
			case *instructions.AddCommand:
				if len(c.SourceContents) > 0 {
					return errdefs.ErrInvalidArgument.WithMessage("heredocs require BuildKit")
				}
			}
		}
	}
	return nil
}

func errBuildKitFlag(flag string) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the --%s option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled", flag))
}

func parsePlatform(s string) (ocispec.Platform, error) {
	p, err := platforms.Parse(s)
	if err != nil {
		return ocispec.Platform{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q: %v", s, err))
	}
	p = platforms.Normalize(p)
	host := platforms.Normalize(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if p.OS != host.OS || p.Architecture != host.Architecture {
		return ocispec.Platform{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("platform %s is not supported: berthd builds for %s only", s, platforms.Format(host)))
	}
	return p, nil
}

func hostConfig(opts buildtypes.Options) *ctypes.HostConfig {
	hc := &ctypes.HostConfig{NetworkMode: opts.NetworkMode, LogConfig: ctypes.LogConfig{Type: "none"}, ExtraHosts: opts.ExtraHosts, ShmSize: opts.ShmSize}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "default"
	}
	hc.Memory, hc.MemorySwap, hc.CPUShares = opts.Memory, opts.MemorySwap, opts.CPUShares
	hc.CpusetCpus, hc.CpusetMems, hc.CPUPeriod, hc.CPUQuota = opts.CPUSetCPUs, opts.CPUSetMems, opts.CPUPeriod, opts.CPUQuota
	hc.CgroupParent = opts.CgroupParent
	hc.Ulimits = opts.Ulimits
	return hc
}

// build runs every stage and tags the result.
func (r *run) build(ctx context.Context) (id string, err error) {
	defer r.releaseScratch(ctx)
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				err = errors.New("Build cancelled")
			}
			r.out.flush()
		}
	}()
	for i := range r.metaArgs {
		a := &r.metaArgs[i]
		r.printStep(a.String())
		if err := r.args.declareMeta(a, r.lex); err != nil {
			return "", err
		}
	}
	for i := range r.stages {
		s, err := r.runStage(ctx, i)
		if err != nil {
			return "", err
		}
		id = s.imageID
		r.stageImages[fmt.Sprint(i)] = id
		if s.name != "" {
			r.stageImages[strings.ToLower(s.name)] = id
		}
		r.out.aux(map[string]string{"ID": id})
	}
	if unused := r.args.unused(); len(unused) > 0 {
		r.out.stream(fmt.Sprintf("[Warning] One or more build-args %v were not consumed\n", unused))
	}
	if id == "" {
		return "", errors.New("No image was generated. Is your Dockerfile empty?")
	}
	r.out.stream(fmt.Sprintf("Successfully built %s\n", shortID(id)))
	for _, t := range r.opts.Tags {
		if err := r.b.images.Tag(ctx, id, t); err != nil {
			return "", err
		}
		r.out.stream(fmt.Sprintf("Successfully tagged %s\n", t))
	}
	r.out.done(id)
	return id, nil
}

func (r *run) printStep(text string) {
	r.step++
	r.out.stream(fmt.Sprintf("Step %d/%d : %s", r.step, r.total, text))
	r.out.stream("\n")
}

func (r *run) scratch(ctx context.Context) (string, error) {
	r.scratchMu.Lock()
	defer r.scratchMu.Unlock()
	if r.scratchID == "" {
		id, release, err := r.b.images.Scratch(ctx)
		if err != nil {
			return "", err
		}
		r.scratchID, r.scratchRelease = id, release
	}
	return r.scratchID, nil
}

func (r *run) releaseScratch(ctx context.Context) {
	if r.scratchRelease != nil {
		r.scratchRelease(context.WithoutCancel(ctx))
	}
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// output turns the builder's lines into JSON messages; with quiet they are held back, and shown only
// when the build fails.
type output struct {
	mu     sync.Mutex
	send   Output
	quiet  bool
	held   []imagetypes.JSONMessage
	closed bool
}

func newOutput(send Output, quiet bool) *output { return &output{send: send, quiet: quiet} }

func (o *output) emit(m imagetypes.JSONMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.quiet {
		o.held = append(o.held, m)
		return
	}
	o.send(m)
}

func (o *output) stream(s string) { o.emit(imagetypes.JSONMessage{Stream: s}) }

func (o *output) aux(v any) {
	b, _ := json.Marshal(v)
	raw := json.RawMessage(b)
	o.emit(imagetypes.JSONMessage{Aux: &raw})
}

// flush shows what quiet held back (the build failed).
func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.held {
		o.send(m)
	}
	o.held = nil
}

// done ends a successful build: quiet prints only the ID.
func (o *output) done(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.quiet {
		o.held = nil
		o.send(imagetypes.JSONMessage{Stream: id + "\n"})
	}
}

// streamWriter sends a container's output as stream messages; stderr is shown red, as by dockerd.
type streamWriter struct {
	o      *output
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	s := string(p)
	if w.stderr {
		s = "\x1b[91m" + s + "\x1b[0m"
	}
	w.o.stream(s)
	return len(p), nil
}

func jsonStatus(id, status string) imagetypes.JSONMessage {
	return imagetypes.JSONMessage{ID: id, Status: status}
}
