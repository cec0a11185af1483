package service

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkCreateParallel is the service-level part of hack/bench/volumes' create figure (no HTTP).
func BenchmarkCreateParallel(b *testing.B) {
	s, err := NewVolumeService(context.Background(), Config{Root: b.TempDir()}, nil, nil)
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
