package buildkit

import (
	"context"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/worker/base"
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
	return &imageExporter{exp: exp, images: w.images}, nil
}

// imageExporter stores the image unpacked in berthd's namespace under a dangling record, then names it
// through the image service, so that a moved tag leaves the previous image as <none> and "tag" events are
// sent, as for any other image.
type imageExporter struct {
	exp    exporter.Exporter
	images Images
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
	inner[string(exptypes.OptKeyUnpack)] = "true"
	inner[string(exptypes.OptKeyStore)] = "true"
	inner[string(exptypes.OptKeyDanglingPrefix)] = danglingPrefix
	inst, err := e.exp.Resolve(ctx, id, inner)
	if err != nil {
		return nil, err
	}
	return &imageExporterInstance{ExporterInstance: inst, names: names, images: e.images}, nil
}

type imageExporterInstance struct {
	exporter.ExporterInstance
	names  []string
	images Images
}

func (i *imageExporterInstance) Export(ctx context.Context, src *exporter.Source, inline exptypes.InlineCache, sessionID string) (map[string]string, exporter.DescriptorReference, error) {
	out, ref, err := i.ExporterInstance.Export(ctx, src, inline, sessionID)
	if err != nil {
		return out, ref, err
	}
	id := out[exptypes.ExporterImageConfigDigestKey]
	if id == "" {
		return out, ref, errors.New("buildkit exported an image without a config digest")
	}
	// ref holds BuildKit's lease on the image's content until the solver releases it, so the dangling
	// record cannot be collected before the names are in place.
	for _, n := range i.names {
		if err := i.images.Tag(ctx, id, n); err != nil {
			return out, ref, err
		}
	}
	if out == nil {
		out = map[string]string{}
	}
	if len(i.names) > 0 {
		out[string(exptypes.OptKeyName)] = strings.Join(i.names, ",")
	}
	return out, ref, nil
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
			return nil, err
		}
		if _, ok := ref.(reference.Digested); ok {
			return nil, errors.New("build tag cannot contain a digest")
		}
		s := reference.TagNameOnly(ref).String()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}
