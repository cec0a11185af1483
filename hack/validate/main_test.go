package main

import "testing"

func TestCheckImport(t *testing.T) {
	for _, tc := range []struct {
		pkg, imp string
		bad      bool
	}{
		{"api/types/volume", "encoding/json", false},
		{"api/types/volume", "github.com/pkg/errors", true},
		{"api/server/router/volume", module + "/api/types/volume", false},
		{"api/server/router/volume", module + "/volume/service", true},
		{"api/server/router/volume", module + "/api/server/httputils", false},
		{"volume/service", module + "/daemon/events", true},
		{"volume/drivers", module + "/plugin/getter", false},
		{"volume/drivers", module + "/plugin/store", true},
		{"plugin/store", module + "/volume", true},
		{"image/store", "github.com/containerd/containerd/content", false},
		{"volume/local", "github.com/containerd/containerd/mount", true},
		{"volume/local", "github.com/containerd/errdefs", false},
		{"daemon", "github.com/containerd/containerd", false},
	} {
		if got := checkImport(tc.pkg, tc.imp) != ""; got != tc.bad {
			t.Errorf("%s importing %s: violation=%v, want %v", tc.pkg, tc.imp, got, tc.bad)
		}
	}
}
