package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/berthd/berthd/daemon/config"
	"github.com/spf13/pflag"
)

// addBuilderFlags binds dockerd's --feature (daemon.json "features") to the config.
func addBuilderFlags(fs *pflag.FlagSet, c *config.Config) {
	fs.Var(&featuresValue{m: &c.Features}, "feature", "Enable or disable a feature (name[=true|false])")
}

// featuresValue is --feature name[=bool], repeatable.
type featuresValue struct{ m *config.FeaturesConfig }

func (f *featuresValue) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	on := true
	if ok {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("invalid value for feature %s: %q (expected true or false)", name, val)
		}
		on = b
	}
	if name == "" {
		return fmt.Errorf("invalid feature %q", s)
	}
	if *f.m == nil {
		*f.m = config.FeaturesConfig{}
	}
	(*f.m)[name] = on
	return nil
}

func (f *featuresValue) String() string {
	var s []string
	for k, v := range *f.m {
		s = append(s, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func (f *featuresValue) Type() string { return "map" }
