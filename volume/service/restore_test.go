package service

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berthd/api/types/filters"
	"github.com/berthd/berthd/volume/testutil"
	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func openService(t *testing.T, root string, cfg Config, pg *testutil.FakeGetter) (*VolumesService, error) {
	t.Helper()
	cfg.Root = root
	if cfg.ListTimeout == 0 {
		cfg.ListTimeout = 300 * time.Millisecond
	}
	cfg.PluginAdapter = testutil.Adapter
	if pg == nil {
		pg = testutil.NewFakeGetter()
	}
	return NewVolumeService(context.Background(), cfg, pg, nil)
}

func TestRestoreKeepsLabelsOptionsAndData(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := openService(t, root, Config{}, nil)
	assert.NilError(t, err)
	v, err := s.Create(ctx, "keep", "local", WithCreateLabels(map[string]string{"a": "b"}),
		WithCreateOptions(map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}))
	assert.NilError(t, err)
	p, err := s.Create(ctx, "plain", "local")
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(p.Mountpoint, "data"), []byte("kept"), 0o644))
	_, err = s.Create(ctx, "lost", "local")
	assert.NilError(t, err)
	assert.NilError(t, s.Shutdown())

	// The directory of "lost" vanishes while the daemon is down: its record goes at restore.
	assert.NilError(t, os.RemoveAll(filepath.Join(root, "volumes", "lost")))

	s2, err := openService(t, root, Config{}, nil)
	assert.NilError(t, err)
	defer s2.Shutdown()
	v2, err := s2.Inspect(ctx, "keep")
	assert.NilError(t, err)
	assert.DeepEqual(t, v2.Labels, map[string]string{"a": "b"})
	assert.DeepEqual(t, v2.Options, v.Options)
	assert.Equal(t, v2.CreatedAt, v.CreatedAt)
	b, err := os.ReadFile(filepath.Join(p.Mountpoint, "data"))
	assert.NilError(t, err)
	assert.Equal(t, string(b), "kept")
	_, err = s2.Inspect(ctx, "lost")
	assert.Assert(t, errdefs.IsNotFound(err))
	assert.NilError(t, s2.vs.db.View(func(tx *bolt.Tx) error {
		assert.Assert(t, tx.Bucket(volumeBucket).Get([]byte("lost")) == nil)
		assert.Equal(t, string(tx.Bucket(metaBucket).Get(schemaKey)), schemaVersion)
		return nil
	}))
}

func TestRecordFormatIsDockerd(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := openService(t, root, Config{}, nil)
	assert.NilError(t, err)
	_, err = s.Create(ctx, "fmt", "local", WithCreateLabel("k", "v"))
	assert.NilError(t, err)
	var raw map[string]any
	assert.NilError(t, s.vs.db.View(func(tx *bolt.Tx) error {
		return json.Unmarshal(tx.Bucket([]byte("volumes")).Get([]byte("fmt")), &raw)
	}))
	assert.Equal(t, raw["Name"], "fmt")
	assert.Equal(t, raw["Driver"], "local")
	assert.DeepEqual(t, raw["Labels"], map[string]any{"k": "v"})
	assert.Assert(t, raw["Options"] == nil)
	assert.NilError(t, s.Shutdown())
}

func TestRestoreWithAbsentPluginIsLazy(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	g := testutil.NewFakeGetter()
	g.Add("plug", false)
	s, err := openService(t, root, Config{}, g)
	assert.NilError(t, err)
	for i := 0; i < 50; i++ {
		_, err := s.Create(ctx, fmt.Sprintf("p%02d", i), "plug", WithCreateLabel("i", fmt.Sprint(i)))
		assert.NilError(t, err)
	}
	assert.Equal(t, g.Refs("plug"), 50)
	assert.NilError(t, s.Shutdown())

	// The plugin is gone, and looking it up is slow (like the legacy retry): start-up does not wait.
	g2 := testutil.NewFakeGetter()
	slow := make(chan struct{})
	g2.OnGet = func(ctx context.Context, name string) error {
		select {
		case <-slow:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	start := time.Now()
	s2, err := openService(t, root, Config{}, g2)
	assert.NilError(t, err)
	assert.Assert(t, time.Since(start) < 5*time.Second)

	vols, warnings, err := s2.List(ctx, filters.NewArgs(filters.Arg("driver", "plug")))
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 50, "records are kept and listed")
	assert.Assert(t, len(warnings) >= 1)
	assert.Assert(t, is.Contains(strings.Join(warnings, "\n"), "plug"))

	close(slow)
	// Now the getter answers "not found" quickly: the records stay (driver missing is not "no volume").
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = s2.Inspect(cctx, "p01")
	assert.ErrorContains(t, err, `get p01: error looking up volume plugin plug: plugin "plug" not found`)
	assert.Assert(t, errdefs.IsNotFound(err))
	assert.NilError(t, s2.Shutdown())

	// The plugin is back: records resolve with their labels and references are taken again.
	g3 := testutil.NewFakeGetter()
	d := g3.Add("plug", false)
	for i := 0; i < 50; i++ {
		_, err := d.Create(ctx, fmt.Sprintf("p%02d", i), nil)
		assert.NilError(t, err)
	}
	s3, err := openService(t, root, Config{}, g3)
	assert.NilError(t, err)
	defer s3.Shutdown()
	v, err := s3.Inspect(ctx, "p07")
	assert.NilError(t, err)
	assert.DeepEqual(t, v.Labels, map[string]string{"i": "7"})
	deadline := time.Now().Add(10 * time.Second)
	for g3.Refs("plug") != 50 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, g3.Refs("plug"), 50)
	assert.NilError(t, s3.RemoveVolume(ctx, "p07", false))
	assert.Equal(t, g3.Refs("plug"), 49)
}

func TestForceRemovePendingRecord(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	g := testutil.NewFakeGetter()
	g.Add("plug", true)
	s, err := openService(t, root, Config{}, g)
	assert.NilError(t, err)
	_, err = s.Create(ctx, "orphan", "plug")
	assert.NilError(t, err)
	assert.NilError(t, s.Shutdown())

	s2, err := openService(t, root, Config{}, testutil.NewFakeGetter())
	assert.NilError(t, err)
	defer s2.Shutdown()
	assert.Assert(t, s2.RemoveVolume(ctx, "orphan", false) != nil)
	assert.NilError(t, s2.RemoveVolume(ctx, "orphan", true))
	vols, _, err := s2.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 0)
}

func TestRestoreManyIsFast(t *testing.T) {
	const n = 2000
	root := t.TempDir()
	dir := filepath.Join(root, "volumes")
	assert.NilError(t, os.MkdirAll(dir, 0o701))
	db, err := openDB(filepath.Join(dir, "metadata.db"), time.Second)
	assert.NilError(t, err)
	assert.NilError(t, db.Update(func(tx *bolt.Tx) error {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("vol%05d", i)
			if err := os.MkdirAll(filepath.Join(dir, name, "_data"), 0o755); err != nil {
				return err
			}
			b, _ := json.Marshal(volumeMetadata{Name: name, Driver: "local", Labels: map[string]string{"n": name}})
			if err := tx.Bucket(volumeBucket).Put([]byte(name), b); err != nil {
				return err
			}
		}
		return nil
	}))
	assert.NilError(t, db.Close())

	start := time.Now()
	s, err := openService(t, root, Config{}, nil)
	assert.NilError(t, err)
	took := time.Since(start)
	defer s.Shutdown()
	t.Logf("restored %d volumes in %s", n, took)
	assert.Assert(t, took < 10*time.Second) // correctness bound only; expected well under a second
	vols, _, err := s.List(context.Background(), filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, len(vols), n)
	assert.DeepEqual(t, vols[42].Labels, map[string]string{"n": "vol00042"})
}

func TestConcurrentCreatesAreDurable(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := openService(t, root, Config{}, nil)
	assert.NilError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				name := fmt.Sprintf("c%d-%02d", w, i)
				if _, err := s.Create(ctx, name, "local", WithCreateLabel("w", fmt.Sprint(w))); err != nil {
					errs <- err
				}
				if i%5 == 0 {
					if err := s.RemoveVolume(ctx, name, false); err != nil {
						errs <- err
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NilError(t, err)
	}
	// Read the database directly, as a crash would leave it: every acknowledged write is there.
	count := 0
	assert.NilError(t, s.vs.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(volumeBucket).ForEach(func(k, v []byte) error { count++; return nil })
	}))
	assert.Equal(t, count, 8*20)
	assert.NilError(t, s.Shutdown())
	s2, err := openService(t, root, Config{}, nil)
	assert.NilError(t, err)
	defer s2.Shutdown()
	vols, _, err := s2.List(ctx, filters.NewArgs(filters.Arg("label", "w=3")))
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 20)
}

func TestLockedDatabaseFailsFast(t *testing.T) {
	root := t.TempDir()
	s, err := openService(t, root, Config{}, nil)
	assert.NilError(t, err)
	defer s.Shutdown()
	start := time.Now()
	_, err = openService(t, root, Config{DBTimeout: 200 * time.Millisecond}, nil)
	assert.Assert(t, time.Since(start) < 5*time.Second)
	path := filepath.Join(root, "volumes", "metadata.db")
	assert.ErrorContains(t, err, "error while opening volume store metadata database ("+path+"): timeout")
	assert.ErrorContains(t, err, fmt.Sprintf("locked by pid %d", os.Getpid()))
}

func TestPluginBackAfterStartIsResolvedByList(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	g := testutil.NewFakeGetter()
	d := g.Add("late", false)
	s, err := openService(t, root, Config{}, g)
	assert.NilError(t, err)
	for i := 0; i < 5; i++ {
		_, err := s.Create(ctx, fmt.Sprintf("l%d", i), "late", WithCreateLabel("n", fmt.Sprint(i)))
		assert.NilError(t, err)
	}
	assert.NilError(t, s.Shutdown())

	g2 := testutil.NewFakeGetter()
	s2, err := openService(t, root, Config{}, g2)
	assert.NilError(t, err)
	defer s2.Shutdown()
	// Start-up's background pass finds no plugin; the records stay pending.
	poll := func(cond func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !cond() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		assert.Assert(t, cond())
	}
	poll(func() bool { return g2.Gets("late") >= 5 })
	vols, warnings, err := s2.List(ctx, filters.NewArgs(filters.Arg("label", "n=3")))
	assert.NilError(t, err)
	assert.DeepEqual(t, names(vols), []string{"l3"})
	assert.Assert(t, len(warnings) == 1 && strings.Contains(warnings[0], "late"), "%v", warnings)

	// The plugin comes back, with the same volumes: a List resolves the records.
	d2 := g2.Add("late", false)
	for i := 0; i < 5; i++ {
		_, err := d2.Create(ctx, fmt.Sprintf("l%d", i), nil)
		assert.NilError(t, err)
	}
	_ = d
	vols, warnings, err = s2.List(ctx, filters.NewArgs())
	assert.NilError(t, err)
	assert.Equal(t, len(vols), 5)
	assert.Equal(t, len(warnings), 0)
	poll(func() bool { return g2.Refs("late") == 5 })
	s2.vs.mu.RLock()
	pending := len(s2.vs.pending)
	s2.vs.mu.RUnlock()
	assert.Equal(t, pending, 0)
	v, err := s2.Inspect(ctx, "l2")
	assert.NilError(t, err)
	assert.DeepEqual(t, v.Labels, map[string]string{"n": "2"})
}
