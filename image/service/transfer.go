package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/berthd/berthd/image"
	"github.com/berthd/berthd/image/store"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Progress receives the JSON messages of a streaming operation, in order.
type Progress = func(imagetypes.JSONMessage)

func emit(p Progress, m imagetypes.JSONMessage) {
	if p != nil {
		p(m)
	}
}

// ImportImage is POST /images/create?fromSrc=: src is a root filesystem tar (possibly compressed) that
// becomes a one-layer image, named repo:tag when repo is given, with `--change` instructions applied.
// srcURL, when not "-" or empty, is an http(s) URL the archive is fetched from instead (src is ignored).
// It reports the new ID as a status message and returns it.
func (s *Service) ImportImage(ctx context.Context, src io.Reader, srcURL, repo, tag, msg string, changes []string, platform string, progress Progress) (string, error) {
	var ref reference.Named
	if repo != "" {
		if n, err := image.ParseNamed(repo); err == nil {
			if _, ok := n.(reference.Digested); ok {
				return "", errdefs.ErrInvalidArgument.WithMessage("cannot import digest reference")
			}
		}
		r, err := image.WithTag(repo, tag)
		if err != nil {
			return "", err
		}
		ref = r
	}
	p := platforms.DefaultSpec()
	if platform != "" {
		pp, err := platforms.Parse(platform)
		if err != nil {
			return "", errdefs.ErrInvalidArgument.WithMessage("invalid platform: " + err.Error())
		}
		p = platforms.Normalize(pp)
	}
	cc := &imagetypes.ContainerConfig{}
	if err := image.ApplyChanges(cc, changes); err != nil {
		return "", err
	}
	if srcURL == "" {
		srcURL = "-"
	}
	if msg == "" {
		msg = "Imported from " + srcURL
	}
	if srcURL != "-" {
		body, err := s.fetchURL(ctx, srcURL, progress)
		if err != nil {
			return "", err
		}
		defer body.Close()
		src = body
	}
	ctx, done, err := s.store.WithLease(ctx)
	if err != nil {
		return "", err
	}
	defer done(context.WithoutCancel(ctx))
	layer, err := s.store.WriteLayer(ctx, src)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	cfg := image.Config{
		Created: &now, Comment: msg, DockerVersion: s.cfg.DockerVersion, Config: cc,
		Architecture: p.Architecture, Variant: p.Variant, OS: p.OS,
		RootFS:  image.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
		History: []image.History{{Created: &now, Comment: msg}},
	}
	if cfg.Architecture == "" {
		cfg.Architecture = runtime.GOARCH
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	manifest, err := s.store.WriteImage(ctx, raw, []ocispec.Descriptor{layer})
	if err != nil {
		return "", err
	}
	if err := s.store.Unpack(ctx, manifest, nil); err != nil {
		return "", err
	}
	id := digest.FromBytes(raw)
	name := ""
	if ref != nil {
		prev, err := s.store.SetName(ctx, ref.String(), manifest)
		if err != nil {
			return "", err
		}
		if prev != "" {
			s.logEvent("untag", prev.String(), image.Familiar(ref), nil)
		}
		name = image.Familiar(ref)
	} else if err := s.store.AddDangling(ctx, manifest); err != nil {
		return "", err
	}
	s.logEvent("import", id.String(), name, nil)
	emit(progress, imagetypes.JSONMessage{Status: id.String()})
	return id.String(), nil
}

// fetchURL opens an import source given as a URL (dockerd adds http:// to a bare host/path).
func (s *Service) fetchURL(ctx context.Context, raw string, progress Progress) (io.ReadCloser, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid import source URL " + raw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, errdefs.ErrUnavailable.WithMessage("import from " + u.Redacted() + ": " + err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errdefs.ErrInvalidArgument.WithMessage("import from " + u.Redacted() + ": " + resp.Status)
	}
	emit(progress, imagetypes.JSONMessage{Status: "Downloading from " + u.Redacted()})
	return resp.Body, nil
}

// LoadImage is POST /images/load: a `docker save` archive or an OCI layout, every image in it unpacked and
// named as the archive says. Each image is reported as dockerd does ("Loaded image: busybox:latest" or
// "Loaded image ID: sha256:..."). A bad archive fails before anything is named, and its content is left to
// garbage collection.
func (s *Service) LoadImage(ctx context.Context, r io.Reader, quiet bool, progress Progress) error {
	ctx, done, err := s.store.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(context.WithoutCancel(ctx))
	loaded, err := s.store.ImportArchive(ctx, r)
	if err != nil {
		return err
	}
	for _, l := range loaded {
		if err := s.store.Unpack(ctx, l.Manifest, nil); err != nil {
			return err
		}
	}
	for _, l := range loaded {
		id, err := s.configID(ctx, l.Manifest)
		if err != nil {
			return err
		}
		if len(l.Names) == 0 {
			if err := s.store.AddDangling(ctx, l.Manifest); err != nil {
				return err
			}
			s.logEvent("load", id.String(), "", nil)
			emit(progress, imagetypes.JSONMessage{Stream: "Loaded image ID: " + id.String() + "\n"})
			continue
		}
		for _, n := range l.Names {
			prev, err := s.store.SetName(ctx, n, l.Manifest)
			if err != nil {
				return err
			}
			fam := image.FamiliarName(n)
			if prev != "" {
				emit(progress, imagetypes.JSONMessage{Stream: "The image " + fam + " already exists, renaming the old one with ID " + prev.String() + " to empty string\n"})
				s.logEvent("untag", prev.String(), fam, nil)
			}
			s.logEvent("load", id.String(), fam, nil)
			emit(progress, imagetypes.JSONMessage{Stream: "Loaded image: " + fam + "\n"})
		}
	}
	return nil
}

func (s *Service) configID(ctx context.Context, manifest ocispec.Descriptor) (image.ID, error) {
	imgs, err := s.store.List(ctx)
	if err != nil {
		return "", err
	}
	for _, img := range imgs {
		if img.Manifest.Digest == manifest.Digest {
			return img.ID, nil
		}
	}
	// Not named yet: read it through a throw-away lookup of the manifest.
	return s.store.ConfigDigest(ctx, manifest)
}

// ExportImages is GET /images/get and /images/{name}/get: the named images as one archive. A name without
// tag saves every tag of that repository; an ID saves the image without names. Every name is resolved
// before the first byte is written, so a missing one is a clean 404.
func (s *Service) ExportImages(ctx context.Context, names []string, w io.Writer) error {
	if len(names) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("no image names given")
	}
	imgs, err := s.store.List(ctx)
	if err != nil {
		return err
	}
	var items []store.ExportItem
	byManifest := map[digest.Digest]int{}
	var saved []*store.Image
	add := func(img *store.Image, m ocispec.Descriptor, name string) {
		i, ok := byManifest[m.Digest]
		if !ok {
			i = len(items)
			byManifest[m.Digest] = i
			items = append(items, store.ExportItem{Manifest: m})
			saved = append(saved, img)
		}
		if name != "" {
			for _, n := range items[i].Names {
				if n == name {
					return
				}
			}
			items[i].Names = append(items[i].Names, name)
		}
	}
	for _, name := range names {
		img, err := store.Find(imgs, name)
		if err != nil {
			// `docker save busybox` saves every tag of the repository.
			if n, perr := reference.ParseNormalizedNamed(name); perr == nil && reference.IsNameOnly(n) {
				found := false
				for _, img := range imgs {
					for _, r := range img.Records {
						if rn, err := reference.ParseNormalizedNamed(r.Name); err == nil && rn.Name() == n.Name() {
							if _, tagged := rn.(reference.Tagged); tagged {
								t, _ := s.store.Target(ctx, r.Name)
								add(img, t, r.Name)
								found = true
							}
						}
					}
				}
				if found {
					continue
				}
			}
			return err
		}
		if isIDRef(img.ID, name) {
			add(img, img.Manifest, "")
			continue
		}
		n, err := image.ParseNamed(name)
		if err != nil {
			return err
		}
		if _, isDigest := n.(reference.Digested); isDigest {
			add(img, img.Manifest, "")
			continue
		}
		full := reference.TagNameOnly(n).String()
		t, err := s.store.Target(ctx, full)
		if err != nil {
			t = img.Manifest
		}
		add(img, t, full)
	}
	if err := s.store.Export(ctx, w, items); err != nil {
		return err
	}
	for _, img := range saved {
		s.logEvent("save", img.ID.String(), "", img)
	}
	return nil
}

// PullImage is POST /images/create?fromImage=: resolve (errors here are answered as HTTP errors), then
// stream dockerd's progress while fetching and unpacking, then name the image by its tag and by its digest.
func (s *Service) PullImage(ctx context.Context, name, tag, platform string, auth *imagetypes.AuthConfig, progress Progress) error {
	if tag == "" {
		// Clients always send a tag, except for `docker pull --all-tags` on a bare repository name.
		if n, err := image.ParseNamed(name); err == nil && reference.IsNameOnly(n) {
			tags, err := s.dist.Tags(ctx, n, auth)
			if err != nil {
				return err
			}
			for _, t := range tags {
				if err := s.PullImage(ctx, name, t, platform, auth, progress); err != nil {
					return err
				}
			}
			return nil
		}
	}
	ref, err := image.PullReference(name, tag)
	if err != nil {
		return err
	}
	matcher := s.store.Platform()
	if platform != "" {
		p, err := platforms.Parse(platform)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage("invalid platform: " + err.Error())
		}
		matcher = platforms.Only(platforms.Normalize(p))
	}
	s.pulls.Lock(ref.String())
	defer s.pulls.Unlock(ref.String())
	ctx, done, err := s.store.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(context.WithoutCancel(ctx))
	resolved, err := s.dist.Resolve(ctx, ref, auth)
	if err != nil {
		return err
	}
	tagOrDigest := "latest"
	switch r := ref.(type) {
	case reference.Digested:
		tagOrDigest = r.Digest().String()
	case reference.Tagged:
		tagOrDigest = r.Tag()
	}
	emit(progress, imagetypes.JSONMessage{Status: "Pulling from " + reference.Path(ref), ID: tagOrDigest})
	var before digest.Digest
	if t, err := s.store.Target(ctx, ref.String()); err == nil {
		before = t.Digest
	}
	// Layers are unpacked while they download; Unpack below completes whatever was not.
	unpacker := s.store.PullUnpacker()
	if err := s.dist.Fetch(ctx, ref, resolved, auth, matcher, progress, unpacker.Ingest); err != nil {
		return err
	}
	manifest, err := s.store.ResolveManifestFor(ctx, resolved.Desc, matcher)
	if err != nil {
		return err
	}
	err = s.store.Unpack(ctx, manifest, func(l ocispec.Descriptor, done, applied bool) {
		switch {
		case !done:
			emit(progress, imagetypes.JSONMessage{Status: "Extracting", ID: shortDigest(l.Digest), Progress: &imagetypes.JSONProgress{Current: 0, Total: l.Size}})
		case applied || unpacker.Applied(l.Digest):
			emit(progress, imagetypes.JSONMessage{Status: "Pull complete", ID: shortDigest(l.Digest)})
		}
	})
	if err != nil {
		return err
	}
	prev, err := s.store.SetName(ctx, ref.String(), manifest)
	if err != nil {
		return err
	}
	if prev != "" {
		s.logEvent("untag", prev.String(), image.Familiar(ref), nil)
	}
	canonical, err := reference.WithDigest(reference.TrimNamed(ref), resolved.Desc.Digest)
	if err == nil {
		if _, err := s.store.SetName(ctx, canonical.String(), manifest); err != nil {
			return err
		}
	}
	emit(progress, imagetypes.JSONMessage{Status: "Digest: " + resolved.Desc.Digest.String()})
	if before == manifest.Digest {
		emit(progress, imagetypes.JSONMessage{Status: "Status: Image is up to date for " + image.Familiar(ref)})
	} else {
		emit(progress, imagetypes.JSONMessage{Status: "Status: Downloaded newer image for " + image.Familiar(ref)})
	}
	s.logEvent("pull", image.Familiar(ref), image.Familiar(ref), nil)
	return nil
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// PushImage is POST /images/{name}/push: the tag given, or every tag of the repository when none is.
func (s *Service) PushImage(ctx context.Context, name, tag string, auth *imagetypes.AuthConfig, progress Progress) error {
	n, err := image.ParseNamed(name)
	if err != nil {
		return err
	}
	if _, ok := n.(reference.Digested); ok {
		return errdefs.ErrInvalidArgument.WithMessage("cannot push a digest reference")
	}
	var refs []reference.Named
	if tag != "" || !reference.IsNameOnly(n) {
		r, err := image.WithTag(name, tag)
		if err != nil {
			return err
		}
		refs = append(refs, r)
	} else {
		imgs, err := s.store.List(ctx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			for _, r := range img.Records {
				if rn, err := reference.ParseNormalizedNamed(r.Name); err == nil && rn.Name() == n.Name() {
					if _, ok := rn.(reference.Tagged); ok {
						refs = append(refs, rn)
					}
				}
			}
		}
	}
	if len(refs) == 0 {
		return errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + reference.FamiliarName(n))
	}
	for _, ref := range refs {
		target, err := s.store.Target(ctx, ref.String())
		if err != nil {
			if errdefs.IsNotFound(err) {
				return errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + reference.FamiliarName(ref))
			}
			return err
		}
		if err := s.dist.Push(ctx, ref, target, auth, progress); err != nil {
			return err
		}
		if canonical, err := reference.WithDigest(reference.TrimNamed(ref), target.Digest); err == nil {
			if _, err := s.store.SetName(ctx, canonical.String(), target); err != nil {
				return err
			}
		}
		s.logEvent("push", image.Familiar(ref), image.Familiar(ref), nil)
	}
	return nil
}
