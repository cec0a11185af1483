package service

import (
	"context"
	"github.com/berthd/berthd/volume/testutil"
	"testing"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/containerd/errdefs"
)

// FuzzFilters: any `filters` query value either fails as a client error (400) or lists/prunes without
// panicking; it never produces another class of error.
func FuzzFilters(f *testing.F) {
	for _, s := range []string{"", "{}", `{"name":{"a":true}}`, `{"name":["^a["]}`, `{"dangling":["maybe"]}`,
		`{"dangling":["true","false"]}`, `{"label":["a=b","c"]}`, `{"label!":["x"]}`, `{"all":["1"]}`,
		`{"driver":["local","nope"]}`, `{"bogus":["x"]}`, `[]`, `null`, `{"name":{"a":false}}`} {
		f.Add(s, false)
		f.Add(s, true)
	}
	ctx := context.Background()
	s, err := NewVolumeService(ctx, Config{Root: f.TempDir()}, testutil.NewFakeGetter(), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Shutdown()
	for _, n := range []string{"alpha", "beta"} {
		if _, err := s.Create(ctx, n, "local", WithCreateLabel("k", n)); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, raw string, prune bool) {
		args, err := filters.FromJSON(raw)
		if err != nil {
			if !isClientError(err) {
				t.Fatalf("parse %q: %v is not a client error", raw, err)
			}
			return
		}
		if prune {
			// Never let the fuzzer delete the fixtures: prune only with an impossible label.
			args.Add("label", "fuzz-never-set")
			_, err = s.Prune(ctx, args)
		} else {
			_, _, err = s.List(ctx, args)
		}
		if err != nil && !isClientError(err) {
			t.Fatalf("%q: %v is not a client error", raw, err)
		}
	})
}

func isClientError(err error) bool {
	return errdefs.IsInvalidArgument(err) || isInvalidParam(err)
}
