// Package filters owns the wire form of the Engine API's `filters` query parameter and the predicates that
// read it. It imports nothing but the standard library.
//
// Two JSON shapes are accepted, as dockerd does: the current `{"key":{"value":true}}` and the legacy
// `{"key":["value"]}` that old clients still send.
package filters

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Args is a set of filter values by key.
type Args struct {
	fields map[string]map[string]bool
	// regexps holds each value compiled once (nil when it is not a valid expression), so Match does not
	// compile per object filtered. Filled only while the set is built, never by readers.
	regexps map[string]*regexp.Regexp
}

// KeyValuePair builds one filter for NewArgs.
type KeyValuePair struct{ Key, Value string }

// Arg is a convenience for KeyValuePair{k, v}.
func Arg(k, v string) KeyValuePair { return KeyValuePair{Key: k, Value: v} }

// NewArgs returns Args holding the given pairs.
func NewArgs(pairs ...KeyValuePair) Args {
	a := Args{fields: map[string]map[string]bool{}, regexps: map[string]*regexp.Regexp{}}
	for _, p := range pairs {
		a.Add(p.Key, p.Value)
	}
	return a
}

// InvalidFilterError is returned for malformed filters or unknown keys; callers classify it as an
// invalid argument (400).
type InvalidFilterError struct{ msg string }

func (e *InvalidFilterError) Error() string { return e.msg }

// InvalidParameter marks the error as a client error for the API server's status mapping.
func (e *InvalidFilterError) InvalidParameter() {}

// FromJSON decodes the query parameter. An empty string is an empty set.
func FromJSON(p string) (Args, error) {
	args := NewArgs()
	if p == "" {
		return args, nil
	}
	raw := []byte(p)
	if err := json.Unmarshal(raw, &args.fields); err == nil {
		if args.fields == nil {
			args.fields = map[string]map[string]bool{}
		}
		for _, vals := range args.fields {
			for v := range vals {
				args.compile(v)
			}
		}
		return args, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal(raw, &legacy); err != nil {
		return NewArgs(), &InvalidFilterError{msg: "invalid filter: " + err.Error()}
	}
	for k, vs := range legacy {
		for _, v := range vs {
			args.Add(k, v)
		}
	}
	return args, nil
}

// ToJSON encodes the set in the current shape; an empty set encodes as "".
func ToJSON(a Args) (string, error) {
	if a.Len() == 0 {
		return "", nil
	}
	b, err := json.Marshal(a.fields)
	return string(b), err
}

// Add adds a value under key.
func (a Args) Add(key, value string) {
	if a.fields[key] == nil {
		a.fields[key] = map[string]bool{}
	}
	a.fields[key][value] = true
	a.compile(value)
}

func (a Args) compile(value string) {
	if _, done := a.regexps[value]; !done {
		re, _ := regexp.Compile(value)
		a.regexps[value] = re
	}
}

// Del removes one value of key.
func (a Args) Del(key, value string) {
	if m := a.fields[key]; m != nil {
		delete(m, value)
		if len(m) == 0 {
			delete(a.fields, key)
		}
	}
}

// Len is the number of keys.
func (a Args) Len() int { return len(a.fields) }

// Keys lists the keys, sorted.
func (a Args) Keys() []string {
	keys := make([]string, 0, len(a.fields))
	for k := range a.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Contains reports whether key has any value.
func (a Args) Contains(key string) bool {
	_, ok := a.fields[key]
	return ok
}

// Get lists the values of key, sorted.
func (a Args) Get(key string) []string {
	vals := make([]string, 0, len(a.fields[key]))
	for v := range a.fields[key] {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	return vals
}

// Validate fails on the first key not in accepted, with dockerd's message.
func (a Args) Validate(accepted map[string]bool) error {
	for _, k := range a.Keys() {
		if !accepted[k] {
			return &InvalidFilterError{msg: fmt.Sprintf("invalid filter '%s'", k)}
		}
	}
	return nil
}

// ExactMatch is true when key is unset or value is one of its values.
func (a Args) ExactMatch(key, value string) bool {
	m, ok := a.fields[key]
	if !ok || len(m) == 0 {
		return true
	}
	return m[value]
}

// FuzzyMatch is true when key is unset, or value equals one of its values or starts with it (IDs given
// by prefix).
func (a Args) FuzzyMatch(key, value string) bool {
	m, ok := a.fields[key]
	if !ok || len(m) == 0 {
		return true
	}
	for f := range m {
		if strings.HasPrefix(value, f) {
			return true
		}
	}
	return false
}

// Match is true when key is unset, or value equals one of its values or matches it as a regular expression
// (dockerd's name filter semantics). An invalid expression matches nothing.
func (a Args) Match(key, value string) bool {
	m, ok := a.fields[key]
	if !ok || len(m) == 0 {
		return true
	}
	for f := range m {
		if f == value {
			return true
		}
		if re := a.regexps[f]; re != nil && re.MatchString(value) {
			return true
		}
	}
	return false
}

// MatchKVList matches `key` filters of the form `k` or `k=v` against a label map: every filter must hold.
func (a Args) MatchKVList(key string, labels map[string]string) bool {
	m, ok := a.fields[key]
	if !ok || len(m) == 0 {
		return true
	}
	for f := range m {
		k, v, hasValue := strings.Cut(f, "=")
		got, present := labels[k]
		if !present || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// GetBoolOrDefault reads a boolean filter ("true"/"1" or "false"/"0"); several contradicting values or an
// unparsable one are an invalid filter.
func (a Args) GetBoolOrDefault(key string, def bool) (bool, error) {
	m, ok := a.fields[key]
	if !ok || len(m) == 0 {
		return def, nil
	}
	var seen []bool
	for v := range m {
		switch strings.ToLower(v) {
		case "true", "1":
			seen = append(seen, true)
		case "false", "0":
			seen = append(seen, false)
		default:
			return def, &InvalidFilterError{msg: fmt.Sprintf("invalid filter '%s=%s'", key, v)}
		}
	}
	for _, s := range seen[1:] {
		if s != seen[0] {
			return def, &InvalidFilterError{msg: fmt.Sprintf("invalid filter '%s': conflicting values", key)}
		}
	}
	return seen[0], nil
}
