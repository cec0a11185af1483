package service

import (
	"context"
	"fmt"
	"github.com/berthd/berthd/volume/testutil"
	"sync/atomic"
	"testing"

	"github.com/berthd/berthd/api/types/filters"
)

// BenchmarkCreateParallel is the service-level part of hack/bench/volumes' create figure (no HTTP).
func BenchmarkCreateParallel(b *testing.B) {
	s, err := NewVolumeService(context.Background(), Config{Root: b.TempDir()}, testutil.NewFakeGetter(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown()
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Create(context.Background(), fmt.Sprintf("bench%d", n.Add(1)), "local"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkList5000 is the service part of GET /volumes at 5,000 volumes (labelled, as the HTTP bench).
func BenchmarkList5000(b *testing.B) {
	ctx := context.Background()
	s, err := NewVolumeService(ctx, Config{Root: b.TempDir()}, testutil.NewFakeGetter(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown()
	for i := 0; i < 5000; i++ {
		if _, err := s.Create(ctx, fmt.Sprintf("bench%05d", i), "local", WithCreateLabels(map[string]string{"bench": "1"})); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.List(ctx, filters.NewArgs()); err != nil {
			b.Fatal(err)
		}
	}
}
