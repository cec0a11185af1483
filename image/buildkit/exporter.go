package buildkit

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/progress"
	"github.com/moby/buildkit/util/push"
	"github.com/moby/buildkit/worker/base"
	"github.com/opencontainers/go-digest"
	"github.com/pkg/errors"
)

// mobyExporter is the exporter name dockerd gives "load into the daemon's image store"; buildx's docker
// driver and POST /build?version=2 ask for it.
const mobyExporter = "moby"

// danglingPrefix makes BuildKit keep an unnamed image under the record berthd's image store uses for
// untagged images (image/store.DanglingPrefix without its "@").
const danglingPrefix = "berth-dangling"

// mobyWorker is BuildKit's containerd worker with the "moby" exporter added.
type mobyWorker struct {
	*base.Worker
	images Images
}

func (w *mobyWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	if name != mobyExporter {
		return w.Worker.Exporter(name, sm)
	}
	exp, err := w.Worker.Exporter(client.ExporterImage, sm)
	if err != nil {
		return nil, err
	}
	return &imageExporter{exp: exp, images: w.images, w: w.Worker, sm: sm}, nil
}

// imageExporter stores the image unpacked in berthd's namespace under a dangling record, then names it
// through the image service, so that a moved tag leaves the previous image as <none> and "tag" events are
// sent, as for any other image. With push=true it pushes the stored image under its names itself: BuildKit's
// exporter would push the dangling record's name.
type imageExporter struct {
	exp    exporter.Exporter
	images Images
	w      *base.Worker
	sm     *session.Manager
}

func (e *imageExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	inner := map[string]string{}
	for k, v := range attrs {
		inner[k] = v
	}
	names, err := sanitizeNames(attrs[string(exptypes.OptKeyName)])
	if err != nil {
		return nil, err
	}
	delete(inner, string(exptypes.OptKeyName))
	p := &pushOpts{}
	for key, dst := range map[exptypes.ImageExporterOptKey]*bool{exptypes.OptKeyPush: &p.push, exptypes.OptKeyInsecure: &p.insecure, exptypes.OptKeyPushByDigest: &p.byDigest} {
		v, ok := attrs[string(key)]
		if !ok {
			continue
		}
		delete(inner, string(key))
		if v == "" {
			*dst = true
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("non-bool value %q for exporter option %s", v, key))
		}
		*dst = b
	}
	if p.byDigest {
		return nil, errdefs.ErrNotImplemented.WithMessage("push-by-digest is not supported by berthd's moby exporter: images are pushed under their names")
	}
	if p.push && len(names) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("tag is needed when pushing to registry")
	}
	if p.push {
		p.w, p.sm = e.w, e.sm
	}
	// The moby exporter always stores the image unpacked (that is what it is for): saying otherwise is
	// refused rather than ignored.
	for _, key := range []exptypes.ImageExporterOptKey{exptypes.OptKeyStore, exptypes.OptKeyUnpack} {
		if v, ok := attrs[string(key)]; ok {
			if b, err := strconv.ParseBool(v); err != nil || !b {
				return nil, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("%s=%s is not supported by berthd's moby exporter: images built into the daemon are always stored and unpacked (use --output type=oci or type=docker with dest= for a file)", key, v))
			}
		}
	}
	inner[string(exptypes.OptKeyUnpack)] = "true"
	inner[string(exptypes.OptKeyStore)] = "true"
	inner[string(exptypes.OptKeyDanglingPrefix)] = danglingPrefix
	inst, err := e.exp.Resolve(ctx, id, inner)
	if err != nil {
		return nil, err
	}
	return &imageExporterInstance{ExporterInstance: inst, names: names, images: e.images, push: p}, nil
}

// pushOpts are the push options the moby exporter takes from BuildKit's image exporter.
type pushOpts struct {
	push, insecure, byDigest bool
	w                        *base.Worker
	sm                       *session.Manager
}

type imageExporterInstance struct {
	exporter.ExporterInstance
	names  []string
	images Images
	push   *pushOpts
}

func (i *imageExporterInstance) Export(ctx context.Context, src *exporter.Source, inline exptypes.InlineCache, sessionID string) (map[string]string, exporter.DescriptorReference, error) {
	src, err := singleImage(src)
	if err != nil {
		return nil, nil, err
	}
	out, ref, err := i.ExporterInstance.Export(ctx, src, inline, sessionID)
	if err != nil {
		return out, ref, err
	}
	id := out[exptypes.ExporterImageConfigDigestKey]
	if id == "" {
		if ref != nil {
			_ = ref.Release()
		}
		return nil, nil, errors.New("buildkit exported an image without a config digest")
	}
	// ref holds BuildKit's lease on the image's content until the solver releases it, so the dangling
	// record cannot be collected before the names are in place.
	for _, n := range i.names {
		done := progress.OneOff(ctx, "naming to "+n)
		if err := done(i.images.Tag(ctx, id, n)); err != nil {
			_ = ref.Release()
			return nil, nil, err
		}
	}
	if i.push.push {
		mfst, err := digest.Parse(out[exptypes.ExporterImageDigestKey])
		if err != nil {
			_ = ref.Release()
			return nil, nil, errors.Wrap(err, "buildkit exported an image without a manifest digest")
		}
		cs := i.push.w.ContentStore()
		for _, n := range i.names {
			// Every blob is local: the store step above unlazied them.
			if err := push.Push(ctx, i.push.sm, sessionID, cs, cs, mfst, n, i.push.insecure, i.push.w.RegistryHosts, false, nil); err != nil {
				_ = ref.Release()
				return nil, nil, err
			}
		}
	}
	// The ID berthd shows is the config digest (BuildKit's own progress names the manifest's): print it
	// as dockerd's moby exporter does, so what the build prints is what `docker inspect` shows.
	progress.OneOff(ctx, "writing image "+id)(nil)
	if len(i.names) > 0 {
		out["image.name"] = strings.Join(i.names, ",")
	} else {
		delete(out, "image.name")
	}
	return out, ref, nil
}

// singleImage turns what the solver produced into one plain image, as berthd's image store keeps one
// platform's manifest per name: attestations (buildx asks for provenance by default) are dropped, since
// they would need an index; a single-platform result keyed by platform becomes a plain ref; several
// platforms are refused.
func singleImage(src *exporter.Source) (*exporter.Source, error) {
	if len(src.Refs) > 1 {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
			"multi-platform images (%d platforms) cannot be loaded into berthd's image store, which keeps one platform per image: use --output type=oci,dest=<file>", len(src.Refs)))
	}
	if len(src.Attestations) == 0 && len(src.Refs) == 0 {
		return src, nil
	}
	src = src.Clone()
	src.Attestations = nil
	for _, r := range src.Refs {
		src.Ref = r
	}
	src.Refs = nil
	return src, nil
}

// sanitizeNames parses the exporter's comma-separated names as dockerd does: normalized, ":latest" added,
// duplicates dropped, digests refused.
func sanitizeNames(list string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n == "" {
			continue
		}
		ref, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference format: %q: %v", n, err))
		}
		if _, ok := ref.(reference.Digested); ok {
			return nil, errdefs.ErrInvalidArgument.WithMessage("build tag cannot contain a digest")
		}
		s := reference.TagNameOnly(ref).String()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}
