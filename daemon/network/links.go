// Links (this file): the environment of legacy --link (network-facts.md §5.4).

package network

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// LinkEnv is the environment a container linking to a child under alias gets: the child's exposed
// ports ("80/tcp"), its name and its environment (but HOME and PATH).
func LinkEnv(parent, alias string, ip netip.Addr, ports []string, childEnv []string) []string {
	pfx := strings.ToUpper(strings.ReplaceAll(alias, "-", "_"))
	type port struct {
		proto string
		num   int
	}
	var ps []port
	for _, p := range ports {
		n, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		if v, err := strconv.Atoi(n); err == nil {
			ps = append(ps, port{strings.ToLower(proto), v})
		}
	}
	// TCP ports first, then by number: the first is ALIAS_PORT.
	sort.Slice(ps, func(i, j int) bool {
		if (ps[i].proto == "tcp") != (ps[j].proto == "tcp") {
			return ps[i].proto == "tcp"
		}
		if ps[i].proto != ps[j].proto {
			return ps[i].proto < ps[j].proto
		}
		return ps[i].num < ps[j].num
	})
	var env []string
	if len(ps) > 0 {
		env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", pfx, ps[0].proto, ip, ps[0].num))
	}
	for _, p := range ps {
		k := fmt.Sprintf("%s_PORT_%d_%s", pfx, p.num, strings.ToUpper(p.proto))
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", k, p.proto, ip, p.num),
			fmt.Sprintf("%s_ADDR=%s", k, ip),
			fmt.Sprintf("%s_PORT=%d", k, p.num),
			fmt.Sprintf("%s_PROTO=%s", k, p.proto))
	}
	env = append(env, fmt.Sprintf("%s_NAME=/%s/%s", pfx, strings.TrimPrefix(parent, "/"), alias))
	for _, e := range childEnv {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", pfx, k, v))
	}
	return env
}
