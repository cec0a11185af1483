package image

import (
	"encoding/json"
	"strings"

	imagetypes "github.com/berthd/berthd/api/types/image"
	"github.com/containerd/errdefs"
)

// ApplyChanges applies `docker import --change` instructions (the Dockerfile subset dockerd accepts there:
// CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR) to cfg. Anything else,
// or a malformed instruction, is an invalid argument.
func ApplyChanges(cfg *imagetypes.ContainerConfig, changes []string) error {
	for _, change := range changes {
		change = strings.TrimSpace(change)
		if change == "" {
			continue
		}
		instr, rest, _ := strings.Cut(change, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "CMD":
			cfg.Cmd = cmdForm(rest)
		case "ENTRYPOINT":
			cfg.Entrypoint = cmdForm(rest)
		case "ENV":
			kvs, err := parseKV(rest, true)
			if err != nil {
				return invalidChange(change, err)
			}
			for _, kv := range kvs {
				cfg.Env = SetEnv(cfg.Env, kv[0], kv[1])
			}
		case "LABEL":
			kvs, err := parseKV(rest, false)
			if err != nil {
				return invalidChange(change, err)
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, kv := range kvs {
				cfg.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				cfg.ExposedPorts[p] = struct{}{}
			}
		case "VOLUME":
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			vols := jsonArray(rest)
			if vols == nil {
				vols = strings.Fields(rest)
			}
			for _, v := range vols {
				if v == "" {
					return invalidChange(change, errdefs.ErrInvalidArgument.WithMessage("VOLUME specified can not be an empty string"))
				}
				cfg.Volumes[v] = struct{}{}
			}
		case "USER":
			cfg.User = rest
		case "WORKDIR":
			cfg.WorkingDir = rest
		case "STOPSIGNAL":
			cfg.StopSignal = rest
		case "ONBUILD":
			cfg.OnBuild = append(cfg.OnBuild, rest)
		default:
			return errdefs.ErrInvalidArgument.WithMessage("dockerfile parse error: " + instr + " is not a valid change command")
		}
	}
	return nil
}

func invalidChange(change string, err error) error {
	return errdefs.ErrInvalidArgument.WithMessage("invalid change " + strings.TrimSpace(change) + ": " + err.Error())
}

// cmdForm is the JSON form if rest is a JSON string array, else the shell form.
func cmdForm(rest string) []string {
	if a := jsonArray(rest); a != nil {
		return a
	}
	return []string{"/bin/sh", "-c", rest}
}

func jsonArray(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil
	}
	if a == nil {
		a = []string{}
	}
	return a
}

// parseKV reads `k=v k2="v 2"` or, for ENV only, the legacy `k v with spaces`.
func parseKV(s string, legacy bool) ([][2]string, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("requires at least one argument")
	}
	if !strings.Contains(words[0], "=") {
		if legacy && len(words) >= 2 {
			return [][2]string{{words[0], strings.Join(words[1:], " ")}}, nil
		}
		return nil, errdefs.ErrInvalidArgument.WithMessage("requires key=value arguments")
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("key=value expected, got " + w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks, honouring double and single quotes and backslash escapes.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
		esc   bool
	)
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\' && quote != '\'':
			esc, in = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// SetEnv sets k to v in env (a list of "K=V"), replacing k's entry in place or adding one at the end, as
// ENV does in a Dockerfile and in --change.
func SetEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
