// Package testutil holds fakes for the volume subsystem's pure-logic tests: an in-memory Driver with hooks
// to make it slow, failing or hung. It imports only `volume` and errdefs; nothing may import it outside
// tests.
package testutil

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/berthd/berthd/volume"
	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
)

// FakeDriver is an in-memory volume.Driver. Hooks, when set, run at the start of the matching call and
// may return an error or block (honouring ctx, as a well-behaved plugin adapter must).
type FakeDriver struct {
	DriverName  string
	DriverScope string

	// OnList, OnGet, OnCreate, OnRemove run before the call; an error fails it.
	OnList   func(ctx context.Context) error
	OnGet    func(ctx context.Context, name string) error
	OnCreate func(ctx context.Context, name string, opts map[string]string) error
	OnRemove func(ctx context.Context, name string) error

	mu    sync.Mutex
	vols  map[string]*FakeVolume
	calls map[string]int
}

// NewFakeDriver returns an empty driver called name with local scope.
func NewFakeDriver(name string) *FakeDriver {
	return &FakeDriver{DriverName: name, DriverScope: volume.LocalScope, vols: map[string]*FakeVolume{}, calls: map[string]int{}}
}

var _ volume.Driver = (*FakeDriver)(nil)

func (d *FakeDriver) count(m string) {
	d.mu.Lock()
	d.calls[m]++
	d.mu.Unlock()
}

// Calls reports how often method (e.g. "Create") was called.
func (d *FakeDriver) Calls(method string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[method]
}

func (d *FakeDriver) Name() string { return d.DriverName }

func (d *FakeDriver) Scope(context.Context) string { return d.DriverScope }

func (d *FakeDriver) Create(ctx context.Context, name string, opts map[string]string) (volume.Volume, error) {
	d.count("Create")
	if d.OnCreate != nil {
		if err := d.OnCreate(ctx, name, opts); err != nil {
			return nil, err
		}
	}
	if name == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("empty name")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.vols[name]; ok {
		return v, nil
	}
	v := &FakeVolume{name: name, driver: d.DriverName, created: time.Now(), opts: opts, mounts: map[string]int{}}
	d.vols[name] = v
	return v, nil
}

func (d *FakeDriver) Remove(ctx context.Context, v volume.Volume) error {
	d.count("Remove")
	if d.OnRemove != nil {
		if err := d.OnRemove(ctx, v.Name()); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fv, ok := d.vols[v.Name()]
	if !ok {
		return errdefs.ErrNotFound.WithMessage("no such volume")
	}
	if fv.mountCount() > 0 {
		return errors.New("volume has active mounts")
	}
	delete(d.vols, v.Name())
	return nil
}

func (d *FakeDriver) List(ctx context.Context) ([]volume.Volume, error) {
	d.count("List")
	if d.OnList != nil {
		if err := d.OnList(ctx); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]volume.Volume, 0, len(d.vols))
	for _, v := range d.vols {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (d *FakeDriver) Get(ctx context.Context, name string) (volume.Volume, error) {
	d.count("Get")
	if d.OnGet != nil {
		if err := d.OnGet(ctx, name); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.vols[name]; ok {
		return v, nil
	}
	return nil, errdefs.ErrNotFound.WithMessage("no such volume")
}

// Hang is a hook that blocks until ctx ends (a hung plugin that honours deadlines).
func Hang(ctx context.Context) error {
	<-ctx.Done()
	return errdefs.ErrUnavailable.WithMessage("plugin did not answer: " + ctx.Err().Error())
}

// FakeVolume is a volume of FakeDriver.
type FakeVolume struct {
	name, driver string
	created      time.Time
	opts         map[string]string

	mu     sync.Mutex
	mounts map[string]int
}

func (v *FakeVolume) Name() string                  { return v.name }
func (v *FakeVolume) DriverName() string            { return v.driver }
func (v *FakeVolume) Path() string                  { return "/fake/" + v.name }
func (v *FakeVolume) CreatedAt() (time.Time, error) { return v.created, nil }
func (v *FakeVolume) Status() map[string]any        { return map[string]any{"fake": true} }

func (v *FakeVolume) mountCount() (n int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.mounts {
		n += c
	}
	return n
}

// Mounts reports the number of active mounts.
func (v *FakeVolume) Mounts() int { return v.mountCount() }

func (v *FakeVolume) Mount(_ context.Context, id string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mounts[id]++
	return v.Path(), nil
}

func (v *FakeVolume) Unmount(_ context.Context, id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mounts[id] > 0 {
		v.mounts[id]--
		if v.mounts[id] == 0 {
			delete(v.mounts, id)
		}
	}
	return nil
}
