package service

import (
	"context"
	"sync"
	"time"

	"github.com/berthd/berthd/volume"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// restoreConcurrency bounds background plugin lookups after start-up.
const restoreConcurrency = 8

// restore loads every record. Records of built-in drivers are checked against the driver's in-memory
// index (no I/O per volume); a record whose volume the driver no longer has is deleted. Records of other
// drivers are kept as pending and resolved in the background, so a missing or slow plugin never delays
// start-up.
func (s *VolumeStore) restore(ctx context.Context) error {
	recs, err := loadMeta(ctx, s.db)
	if err != nil {
		return err
	}
	// Sized once: growing them record by record was a tenth of restoring thousands of volumes.
	s.mu.Lock()
	s.names = make(map[string]volume.Volume, len(recs))
	s.labels = make(map[string]map[string]string, len(recs))
	s.options = make(map[string]map[string]string, len(recs))
	s.created = make(map[string]time.Time, len(recs))
	s.mu.Unlock()
	var stale []string
	for _, m := range recs {
		if m.Driver != "" && s.drivers.IsBuiltin(m.Driver) {
			d, err := s.drivers.GetDriver(ctx, m.Driver)
			if err == nil {
				v, gerr := d.Get(ctx, m.Name)
				switch {
				case gerr == nil && v != nil:
					s.setNamed(v, m)
					continue
				case errdefs.IsNotFound(gerr) || (gerr == nil && v == nil):
					stale = append(stale, m.Name)
					continue
				}
			}
		}
		s.mu.Lock()
		s.pending[m.Name] = m
		s.mu.Unlock()
	}
	if len(stale) > 0 {
		log.G(ctx).WithField("count", len(stale)).Info("volume store: removing records of volumes their driver no longer has")
		if err := deleteMeta(s.commits, stale...); err != nil {
			return err
		}
	}
	if len(s.pending) > 0 {
		bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.bgCancel = cancel
		s.bgWG.Add(1)
		go func() {
			defer s.bgWG.Done()
			s.resolveAll(bg)
		}()
	}
	return nil
}

// resolveAll tries every pending record once; those that still fail stay pending for lazy resolution.
func (s *VolumeStore) resolveAll(ctx context.Context) {
	s.mu.RLock()
	recs := make([]volumeMetadata, 0, len(s.pending))
	for _, m := range s.pending {
		recs = append(recs, m)
	}
	s.mu.RUnlock()
	sem := make(chan struct{}, restoreConcurrency)
	var wg sync.WaitGroup
	for _, m := range recs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func(m volumeMetadata) {
			defer func() { <-sem; wg.Done() }()
			s.locks.Lock(m.Name)
			defer s.locks.Unlock(m.Name)
			cur, ok := s.getPending(m.Name)
			if !ok {
				return
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if _, err := s.resolvePending(rctx, cur); err != nil {
				log.G(ctx).WithError(err).WithFields(log.Fields{"volume": m.Name, "driver": m.Driver}).Warn("Error restoring volume; keeping its record")
			}
		}(m)
	}
	wg.Wait()
}

// resolvePending turns a pending record into a cached volume. It returns (nil, nil) when the driver says
// the volume is gone (the record is then deleted) and an error, keeping the record, when the driver cannot
// be reached. Caller holds the name lock.
func (s *VolumeStore) resolvePending(ctx context.Context, m volumeMetadata) (volume.Volume, error) {
	if m.Driver == "" {
		v := s.probe(ctx, m.Name)
		if v == nil {
			return nil, s.purgeRecord(ctx, m)
		}
		return v, s.adopt(ctx, v, m.Labels, m.Options)
	}
	d, err := s.drivers.CreateDriver(ctx, m.Driver)
	if err != nil {
		s.mu.Lock()
		s.pendingErr[m.Driver] = err
		s.mu.Unlock()
		return nil, err
	}
	release := func() {
		if !s.drivers.IsBuiltin(m.Driver) {
			_ = s.drivers.ReleaseDriver(ctx, m.Driver)
		}
	}
	v, err := d.Get(ctx, m.Name)
	if errdefs.IsNotFound(err) || (err == nil && v == nil) {
		release()
		return nil, s.purgeRecord(ctx, m)
	}
	if err != nil {
		release()
		s.mu.Lock()
		s.pendingErr[m.Driver] = err
		s.mu.Unlock()
		return nil, err
	}
	s.setNamed(v, m)
	return v, nil
}
