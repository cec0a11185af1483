package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
	bolt "go.etcd.io/bbolt"
)

// Bucket layout of <root>/volumes/metadata.db (schema 1):
//
//	volumes/                 one key per volume (dockerd's bucket: a data root can move between daemons)
//	    <name> -> {"Name","Driver","Labels","Options","CreatedAt"}
//	berthd/
//	    schema -> "1"
//
// dockerd ignores the extra bucket and the extra CreatedAt field.
var (
	volumeBucket = []byte("volumes")
	metaBucket   = []byte("berthd")
	schemaKey    = []byte("schema")
)

const schemaVersion = "1"

// volumeMetadata is one record.
type volumeMetadata struct {
	Name      string
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	CreatedAt string `json:",omitempty"`
}

// openDB opens (creating) the metadata database. A database locked by another process fails after timeout
// with the holder named, instead of hanging the daemon.
func openDB(path string, timeout time.Duration) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		msg := fmt.Sprintf("error while opening volume store metadata database (%s): %v", path, err)
		if errors.Is(err, bolt.ErrTimeout) {
			if pid := lockHolder(path); pid != "" {
				msg += " (locked by pid " + pid + ")"
			}
			return nil, errdefs.ErrUnavailable.WithMessage(msg)
		}
		return nil, errors.New(msg)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(volumeBucket); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		switch v := string(b.Get(schemaKey)); v {
		case "":
			return b.Put(schemaKey, []byte(schemaVersion))
		case schemaVersion:
			return nil
		default:
			return errors.Errorf("unsupported volume metadata schema %q (this daemon knows %q)", v, schemaVersion)
		}
	})
	if err != nil {
		db.Close()
		return nil, errors.Wrapf(err, "error while initializing volume store metadata database (%s)", path)
	}
	return db, nil
}

// lockHolder finds the pid holding a flock on path, from /proc/locks; "" when unknown.
func lockHolder(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return ""
	}
	defer f.Close()
	suffix := fmt.Sprintf(":%d", st.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && strings.HasSuffix(fields[5], suffix) && strings.Count(fields[5], ":") == 2 {
			return fields[4]
		}
	}
	return ""
}

// committer groups concurrent writes into shared bbolt commits. A commit costs about the same for one
// record as for a hundred (its fsyncs dominate), so throughput is the group size. bbolt's Batch waits a
// fixed MaxBatchDelay for writers that may never come; here a commit starts at once unless other
// operations that will write are known to be on their way (begin/end brackets every create and remove),
// and then waits only for those, at most maxGroupWait. A lone writer never waits, and writers arriving
// during a commit queue for the next one, which starts as soon as it ends. Every writer still returns only
// after its own change is durable.
type committer struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []*commitReq
	running bool
	active  int           // operations between begin and end
	last    int           // writers seen during the last commit: its group and those that queued meanwhile
	lastDur time.Duration // how long the last commit took
	kick    chan struct{} // wakes a runner waiting for expected writers
}

// maxGroupWait bounds how long a commit waits for operations in progress to bring their writes.
const maxGroupWait = time.Millisecond

type commitReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

func newCommitter(db *bolt.DB) *committer {
	return &committer{db: db, kick: make(chan struct{}, 1)}
}

// begin announces an operation that is likely to write; end must follow, whether it wrote or not.
func (c *committer) begin() {
	c.mu.Lock()
	c.active++
	c.mu.Unlock()
}

func (c *committer) end() {
	c.mu.Lock()
	c.active--
	c.mu.Unlock()
	c.wake()
}

// want is how many writers the next commit waits for: those already in progress, and as many as were seen
// during the last commit. Clients that just got their answer tend to come straight back with their next
// write; without this a steady load of N clients settles into two alternating commits of about N/2 (the
// first returner starts a commit while the rest are still on their way), paying twice the fsyncs. A lone
// writer saw nobody else, so it never waits; when the load drops, one commit waits and the expectation
// follows. Called with c.mu held.
func (c *committer) want() int {
	return max(c.active, c.last)
}

// maxWait bounds that wait by what a commit costs: a writer left out waits for a whole commit anyway.
func (c *committer) maxWait() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return min(max(c.lastDur, maxGroupWait/4), maxGroupWait)
}

func (c *committer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// update runs fn in a read-write transaction shared with concurrent callers and returns once it is
// committed. fn may run more than once (when another writer's fn fails, the rest are retried without
// it), so it must only touch the transaction.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	r := &commitReq{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, r)
	if !c.running {
		c.running = true
		go c.run()
	}
	c.mu.Unlock()
	c.wake()
	return <-r.done
}

// run commits queued writes group by group until the queue is empty.
func (c *committer) run() {
	var timer *time.Timer
	for {
		c.mu.Lock()
		if len(c.queue) > 0 && len(c.queue) < c.want() {
			// Others are on their way: give them a moment to join this commit.
			c.mu.Unlock()
			wait := c.maxWait()
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			deadline := time.Now().Add(wait)
			for {
				c.mu.Lock()
				waiting := len(c.queue) < c.want()
				c.mu.Unlock()
				if !waiting || !time.Now().Before(deadline) {
					break
				}
				select {
				case <-c.kick:
				case <-timer.C:
				}
			}
			timer.Stop()
			c.mu.Lock()
		}
		group := c.queue
		c.queue = nil
		if len(group) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		t0 := time.Now()
		c.commit(group)
		c.mu.Lock()
		c.last, c.lastDur = len(group)+len(c.queue), time.Since(t0)
		c.mu.Unlock()
	}
}

// commit applies group in one transaction. A writer whose fn fails gets its error alone and the others
// are committed without it; a failed commit fails them all.
func (c *committer) commit(group []*commitReq) {
	for len(group) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range group {
				if err := r.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if err != nil && failed >= 0 {
			group[failed].done <- err
			group = append(group[:failed:failed], group[failed+1:]...)
			continue
		}
		for _, r := range group {
			r.done <- err
		}
		return
	}
}

// putMeta commits a record before returning; concurrent callers share one commit (and one fsync).
func putMeta(c *committer, m volumeMetadata) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	key := []byte(m.Name)
	return c.update(func(tx *bolt.Tx) error {
		return tx.Bucket(volumeBucket).Put(key, b)
	})
}

// deleteMeta commits the removal of records.
func deleteMeta(c *committer, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	return c.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(volumeBucket)
		for _, n := range names {
			if err := b.Delete([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// loadMeta reads every record; an undecodable one is reported with its name only (driver unknown).
func loadMeta(ctx context.Context, db *bolt.DB) ([]volumeMetadata, error) {
	var out []volumeMetadata
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(volumeBucket).ForEach(func(k, v []byte) error {
			var m volumeMetadata
			if err := json.Unmarshal(v, &m); err != nil {
				m = volumeMetadata{}
			}
			m.Name = string(k)
			out = append(out, m)
			return nil
		})
	})
	return out, err
}
