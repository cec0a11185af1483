// Package logger knows berthd's log drivers and their --log-opt options: json-file (dockerd's format),
// local and none. It validates options with dockerd's wording, picks each driver's file and defaults, and
// computes the attributes (labels, env, tag) written with every line. Files are written and read by
// package jsonfile. It must not import the container service.
//
// The local driver keeps dockerd's semantics (rotation on by default: 20 MB, 5 files, compressed) but
// not its protobuf file format: it writes the same JSON lines as json-file under local-logs/container.log,
// so `docker logs` with since/until/tail/follow and rotation behave the same for both.
package logger

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/berthd/berthd/daemon/containers/logger/jsonfile"
	units "github.com/docker/go-units"
)

// Driver names.
const (
	JSONFile = "json-file"
	Local    = "local"
	None     = "none"
)

// attrOpts are the options that add attributes to each line (json-file only, as dockerd).
var attrOpts = map[string]bool{"labels": true, "labels-regex": true, "env": true, "env-regex": true, "tag": true}

// Validate checks a driver name and its options as dockerd does at container create and daemon start.
func Validate(driver string, opts map[string]string) error {
	switch driver {
	case JSONFile, Local:
		_, err := parse(driver, opts)
		return err
	case None:
		for k := range opts {
			return fmt.Errorf("unknown log opt '%s' for %s log driver", k, driver)
		}
		return nil
	case "awslogs", "fluentd", "gcplogs", "gelf", "journald", "logentries", "splunk", "syslog", "etwlogs":
		return fmt.Errorf("berthd does not support the %s log driver (supported: json-file, local, none)", driver)
	default:
		return fmt.Errorf("error looking up logging plugin %s: plugin %q not found", driver, driver)
	}
}

// Readable reports whether `docker logs` can read the driver's output.
func Readable(driver string) bool { return driver == JSONFile || driver == Local || driver == "" }

func parse(driver string, opts map[string]string) (jsonfile.Options, error) {
	o := jsonfile.Options{MaxFiles: 1}
	if driver == Local {
		o = jsonfile.Options{MaxSize: 20 * 1000 * 1000, MaxFiles: 5, Compress: true}
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := opts[k]
		switch {
		case k == "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil || n < 0 {
				return o, fmt.Errorf("invalid size: '%s'", v)
			}
			o.MaxSize = n
		case k == "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, err
			}
			if n < 1 {
				return o, fmt.Errorf("max-file cannot be less than 1")
			}
			o.MaxFiles = n
		case k == "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, err
			}
			o.Compress = b
		case driver == JSONFile && attrOpts[k]:
			if strings.HasSuffix(k, "-regex") {
				if _, err := regexp.Compile(v); err != nil {
					return o, fmt.Errorf("invalid %s: %v", k, err)
				}
			}
			if k == "tag" {
				if _, err := template.New("").Parse(v); err != nil {
					return o, err
				}
			}
		case driver == Local:
			return o, fmt.Errorf("unknown log opt '%s' for log driver local", k)
		default:
			return o, fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	if o.Compress {
		switch {
		case driver == Local && o.MaxFiles == 1:
			return o, fmt.Errorf("compression cannot be enabled when max file count is 1")
		case driver == JSONFile && (o.MaxFiles < 2 || o.MaxSize <= 0):
			return o, fmt.Errorf("compress cannot be true when max-file is less than 2 or max-size is not set")
		}
	}
	// max-file without max-size is accepted (dockerd): there is simply nothing to rotate.
	if o.MaxSize <= 0 {
		o.MaxFiles, o.Compress = 1, false
	}
	return o, nil
}

// Info describes the container for attributes and the tag template.
type Info struct {
	ID, Name, ImageName, ImageID string
	Labels                       map[string]string
	Env                          []string
	DaemonName                   string
}

// Options returns the writer options for a container's log (attributes included).
func Options(driver string, opts map[string]string, info Info) (jsonfile.Options, error) {
	o, err := parse(driver, opts)
	if err != nil || driver != JSONFile {
		return o, err
	}
	o.Attrs, err = attributes(opts, info)
	return o, err
}

// Path is where driver keeps the log of the container whose directory is dir.
func Path(driver, dir, id string) string {
	if driver == Local {
		return filepath.Join(dir, "local-logs", "container.log")
	}
	return filepath.Join(dir, id+"-json.log")
}

// attributes are dockerd's "extra attributes": the labels and env values named (or matched) by the
// options, and the rendered tag when one is given.
func attributes(opts map[string]string, info Info) (map[string]string, error) {
	attrs := map[string]string{}
	if v, ok := opts["labels"]; ok {
		for _, k := range strings.Split(v, ",") {
			if val, ok := info.Labels[strings.TrimSpace(k)]; ok {
				attrs[strings.TrimSpace(k)] = val
			}
		}
	}
	if v, ok := opts["labels-regex"]; ok {
		re := regexp.MustCompile(v)
		for k, val := range info.Labels {
			if re.MatchString(k) {
				attrs[k] = val
			}
		}
	}
	env := map[string]string{}
	for _, e := range info.Env {
		k, v, ok := strings.Cut(e, "=")
		if ok {
			env[k] = v
		}
	}
	if v, ok := opts["env"]; ok {
		for _, k := range strings.Split(v, ",") {
			if val, ok := env[strings.TrimSpace(k)]; ok {
				attrs[strings.TrimSpace(k)] = val
			}
		}
	}
	if v, ok := opts["env-regex"]; ok {
		re := regexp.MustCompile(v)
		for k, val := range env {
			if re.MatchString(k) {
				attrs[k] = val
			}
		}
	}
	if t, ok := opts["tag"]; ok {
		tag, err := renderTag(t, info)
		if err != nil {
			return nil, err
		}
		attrs["tag"] = tag
	}
	if len(attrs) == 0 {
		return nil, nil
	}
	return attrs, nil
}

func renderTag(t string, info Info) (string, error) {
	tmpl, err := template.New("tag").Parse(t)
	if err != nil {
		return "", err
	}
	short := func(s string) string {
		s = strings.TrimPrefix(s, "sha256:")
		if len(s) > 12 {
			return s[:12]
		}
		return s
	}
	data := struct {
		ID, FullID, Name, ImageName, ImageID, ImageFullID, DaemonName string
	}{short(info.ID), info.ID, strings.TrimPrefix(info.Name, "/"), info.ImageName, short(info.ImageID), info.ImageID, info.DaemonName}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Details renders a message's attributes as `docker logs --details` prefixes them: k=v pairs sorted by
// key, comma-separated, then a space (a lone space when there are none).
func Details(attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + attrs[k]
	}
	return strings.Join(parts, ",") + " "
}
