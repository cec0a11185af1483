package service

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pkg/errors"
	bolt "go.etcd.io/bbolt"
	"gotest.tools/v3/assert"
)

// Concurrent writers are all committed, each returning only once its record is in the database, and a
// writer whose change fails gets its own error without failing the others of its group.
func TestCommitterGroupsAndIsolatesFailures(t *testing.T) {
	db, err := openDB(filepath.Join(t.TempDir(), "metadata.db"), time.Second)
	assert.NilError(t, err)
	defer db.Close()
	c := newCommitter(db)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 64)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("v%02d", i)
			if i%8 == 3 {
				errs[i] = c.update(func(tx *bolt.Tx) error {
					_ = tx.Bucket(volumeBucket).Put([]byte(name), []byte("{}"))
					return boom
				})
				return
			}
			errs[i] = putMeta(c, volumeMetadata{Name: name, Driver: "local"})
			if errs[i] == nil {
				errs[i] = db.View(func(tx *bolt.Tx) error {
					if tx.Bucket(volumeBucket).Get([]byte(name)) == nil {
						return errors.Errorf("%s returned before it was committed", name)
					}
					return nil
				})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		name := fmt.Sprintf("v%02d", i)
		var got []byte
		assert.NilError(t, db.View(func(tx *bolt.Tx) error {
			got = tx.Bucket(volumeBucket).Get([]byte(name))
			return nil
		}))
		if i%8 == 3 {
			assert.Assert(t, errors.Is(err, boom), name)
			assert.Assert(t, got == nil, "%s: failed write must be rolled back", name)
		} else {
			assert.NilError(t, err, name)
			assert.Assert(t, got != nil, name)
		}
	}
	assert.NilError(t, deleteMeta(c, "v00", "v01"))
	assert.NilError(t, db.View(func(tx *bolt.Tx) error {
		assert.Assert(t, tx.Bucket(volumeBucket).Get([]byte("v00")) == nil)
		return nil
	}))
}

// An announced operation that never writes delays a commit by at most maxGroupWait (checked with a
// generous bound), and a writer joining before that shares the commit.
func TestCommitterWaitsOnlyForAnnouncedWriters(t *testing.T) {
	db, err := openDB(filepath.Join(t.TempDir(), "metadata.db"), time.Second)
	assert.NilError(t, err)
	defer db.Close()
	c := newCommitter(db)
	c.begin() // never writes
	c.begin()
	start := time.Now()
	assert.NilError(t, putMeta(c, volumeMetadata{Name: "a", Driver: "local"}))
	assert.Assert(t, time.Since(start) < 5*time.Second)
	c.end()
	c.end()

	c.begin()
	c.begin()
	done := make(chan error, 1)
	go func() { done <- putMeta(c, volumeMetadata{Name: "b", Driver: "local"}) }()
	assert.NilError(t, putMeta(c, volumeMetadata{Name: "c", Driver: "local"}))
	assert.NilError(t, <-done)
	c.end()
	c.end()
}
