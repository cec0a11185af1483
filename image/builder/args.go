package builder

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// proxyArgs are usable without an ARG and never recorded in history, as with dockerd.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
}

// buildArgs are the request's --build-arg values and the ARGs declared so far.
type buildArgs struct {
	given    map[string]*string
	consumed map[string]bool
	// meta are the values of ARGs before the first FROM.
	meta map[string]*string
}

func newBuildArgs(given map[string]*string) *buildArgs {
	if given == nil {
		given = map[string]*string{}
	}
	return &buildArgs{given: given, consumed: map[string]bool{}, meta: map[string]*string{}}
}

// value is an ARG's value: the request's wins over the default.
func (a *buildArgs) value(key string, def *string) *string {
	a.consumed[key] = true
	if v, ok := a.given[key]; ok && v != nil {
		return v
	}
	return def
}

func (a *buildArgs) declareMeta(c *instructions.ArgCommand, lex *shell.Lex) error {
	for _, kv := range c.Args {
		def := kv.Value
		if def != nil {
			v, _, err := lex.ProcessWord(*def, a.metaEnv())
			if err != nil {
				return err
			}
			def = &v
		}
		a.meta[kv.Key] = a.value(kv.Key, def)
	}
	return nil
}

// metaEnv is metaMap as the shell lexer reads variables.
func (a *buildArgs) metaEnv() shell.EnvGetter {
	m := a.metaMap()
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return shell.EnvsFromSlice(env)
}

func (a *buildArgs) metaMap() map[string]string {
	m := map[string]string{}
	for k, v := range a.meta {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

// unused are the request's args no ARG declared (proxy args excepted), sorted.
func (a *buildArgs) unused() []string {
	var out []string
	for k := range a.given {
		if !a.consumed[k] && !proxyArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// stageArgs are the ARGs a stage declared, in order, with their values.
type stageArgs struct {
	keys   []string
	values map[string]*string
}

func (s *stageArgs) set(k string, v *string) {
	if s.values == nil {
		s.values = map[string]*string{}
	}
	if _, ok := s.values[k]; !ok {
		s.keys = append(s.keys, k)
	}
	s.values[k] = v
}

// envFor lists the declared args with a value that env does not set, plus the request's proxy args:
// what a RUN sees besides its ENV, sorted by key.
func (s *stageArgs) envFor(env []string, given map[string]*string) []string {
	inEnv := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		inEnv[k] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range s.keys {
		if v := s.values[k]; v != nil && !inEnv[k] {
			out = append(out, k+"="+*v)
			seen[k] = true
		}
	}
	for k, v := range given {
		if proxyArgs[k] && v != nil && !inEnv[k] && !seen[k] {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out
}

// historyPrefix is the "|N K=v ..." dockerd puts before a RUN's command when args are in use; proxy
// args that no ARG declared are left out.
func (s *stageArgs) historyPrefix(argEnv []string) []string {
	var rec []string
	for _, e := range argEnv {
		k, _, _ := strings.Cut(e, "=")
		if proxyArgs[k] {
			if _, declared := s.values[k]; !declared {
				continue
			}
		}
		rec = append(rec, e)
	}
	if len(rec) == 0 {
		return nil
	}
	return append([]string{fmt.Sprintf("|%d", len(rec))}, rec...)
}
