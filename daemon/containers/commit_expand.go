package containers

import (
	"strings"
)

// expandedInstructions are the --change instructions whose arguments dockerd expands with the
// environment in effect (the Dockerfile rule); CMD, ENTRYPOINT and the like are left to the shell.
var expandedInstructions = map[string]bool{
	"ENV": true, "LABEL": true, "WORKDIR": true, "USER": true, "EXPOSE": true, "VOLUME": true, "STOPSIGNAL": true,
}

// expandChange expands $VAR, ${VAR}, ${VAR:-word} and ${VAR:+word} in one --change line against env
// (KEY=value entries), as dockerd's Dockerfile lexer does: nothing inside single quotes, and a
// backslash-escaped "$" stays literal. Unset variables expand to "".
func expandChange(change string, env []string) string {
	instr, _, _ := strings.Cut(strings.TrimSpace(change), " ")
	if !expandedInstructions[strings.ToUpper(instr)] {
		return change
	}
	lookup := func(name string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(env[i], "="); k == name {
				return v, true
			}
		}
		return "", false
	}
	var b strings.Builder
	inSingle := false
	for i := 0; i < len(change); i++ {
		ch := change[i]
		switch {
		case ch == '\'':
			inSingle = !inSingle
			b.WriteByte(ch)
		case ch == '\\' && !inSingle && i+1 < len(change) && change[i+1] == '$':
			b.WriteString(`\$`)
			i++
		case ch == '$' && !inSingle && i+1 < len(change):
			n, out := expandVar(change[i+1:], lookup)
			if n == 0 {
				b.WriteByte(ch)
				continue
			}
			b.WriteString(out)
			i += n
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// expandVar expands the variable reference at the start of s (after the "$"); it returns how many bytes
// it used (0: not a reference) and the value.
func expandVar(s string, lookup func(string) (string, bool)) (int, string) {
	isName := func(c byte, first bool) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	if s[0] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return 0, ""
		}
		body := s[1:end]
		name, word, op := body, "", ""
		for _, o := range []string{":-", ":+"} {
			if n, w, ok := strings.Cut(body, o); ok {
				name, word, op = n, w, o
				break
			}
		}
		v, set := lookup(name)
		switch op {
		case ":-":
			if !set || v == "" {
				v = word
			}
		case ":+":
			if set && v != "" {
				v = word
			} else {
				v = ""
			}
		}
		return end + 1, v
	}
	n := 0
	for n < len(s) && isName(s[n], n == 0) {
		n++
	}
	if n == 0 {
		return 0, ""
	}
	v, _ := lookup(s[:n])
	return n, v
}
