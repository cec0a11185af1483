package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
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

// batchDelay is how long a commit waits for more writers to join it.
const batchDelay = time.Millisecond

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
	// Writers already in flight share a commit; a long delay would only make a lone writer wait, since
	// every create/remove waits for its commit before the API answers.
	db.MaxBatchDelay = batchDelay
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

// putMeta commits a record before returning; concurrent callers share one commit (and one fsync).
func putMeta(db *bolt.DB, m volumeMetadata) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(volumeBucket).Put([]byte(m.Name), b)
	})
}

// deleteMeta commits the removal of records.
func deleteMeta(db *bolt.DB, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	return db.Batch(func(tx *bolt.Tx) error {
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
