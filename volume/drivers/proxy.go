package drivers

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/pkg/errors"

	"github.com/berthd/berthd/plugin/getter"
)

// The /VolumeDriver.* wire format (engine-api.md §3.4). Replies carry `Err`; a non-empty one fails the
// call with `<method>: <Err>`, the same text the plugin client gives when the plugin puts Err in a
// non-200 reply (which is what go-plugins-helpers does).

type volumeRequest struct {
	Name string
}

type createRequest struct {
	Name string
	Opts map[string]string
}

type mountRequest struct {
	Name string
	ID   string
}

type errReply struct {
	Err string
}

type mountpointReply struct {
	Mountpoint string
	Err        string
}

type proxyVolume struct {
	Name       string
	Mountpoint string
	CreatedAt  string
	Status     map[string]any
}

type getReply struct {
	Volume *proxyVolume
	Err    string
}

type listReply struct {
	Volumes []*proxyVolume
	Err     string
}

type capabilitiesReply struct {
	Capabilities struct{ Scope string }
	Err          string
}

// volumeProxy speaks the volume protocol over a plugin client.
type volumeProxy struct {
	c getter.Client
}

func replyErr(method, msg string) error {
	if msg == "" {
		return nil
	}
	return errors.New(method + ": " + msg)
}

func (p volumeProxy) call(ctx context.Context, method string, args any, ret any, errText func() string) error {
	if err := p.c.CallContext(ctx, method, args, ret); err != nil {
		return err
	}
	return replyErr(method, errText())
}

func (p volumeProxy) Create(ctx context.Context, name string, opts map[string]string) error {
	var r errReply
	return p.call(ctx, "VolumeDriver.Create", createRequest{Name: name, Opts: opts}, &r, func() string { return r.Err })
}

func (p volumeProxy) Remove(ctx context.Context, name string) error {
	var r errReply
	return p.call(ctx, "VolumeDriver.Remove", volumeRequest{Name: name}, &r, func() string { return r.Err })
}

func (p volumeProxy) Path(ctx context.Context, name string) (string, error) {
	var r mountpointReply
	err := p.call(ctx, "VolumeDriver.Path", volumeRequest{Name: name}, &r, func() string { return r.Err })
	return r.Mountpoint, err
}

func (p volumeProxy) Mount(ctx context.Context, name, id string) (string, error) {
	var r mountpointReply
	err := p.call(ctx, "VolumeDriver.Mount", mountRequest{Name: name, ID: id}, &r, func() string { return r.Err })
	return r.Mountpoint, err
}

func (p volumeProxy) Unmount(ctx context.Context, name, id string) error {
	var r errReply
	return p.call(ctx, "VolumeDriver.Unmount", mountRequest{Name: name, ID: id}, &r, func() string { return r.Err })
}

// Get returns NotFound "no such volume" when the plugin answers without a volume, and also when its
// error text says the volume does not exist: plugins have no other way to say so (go-plugins-helpers
// turns every error into a 500 with Err), and the volume service must tell "absent" from "failed".
func (p volumeProxy) Get(ctx context.Context, name string) (*proxyVolume, error) {
	var r getReply
	if err := p.call(ctx, "VolumeDriver.Get", volumeRequest{Name: name}, &r, func() string { return r.Err }); err != nil {
		if !errdefs.IsNotFound(err) && !errdefs.IsUnavailable(err) && saysNotFound(err.Error()) {
			return nil, errdefs.ErrNotFound.WithMessage(err.Error())
		}
		return nil, err
	}
	if r.Volume == nil {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("get %s: no such volume", name))
	}
	return r.Volume, nil
}

func saysNotFound(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "no such volume") || strings.Contains(s, "not found") || strings.Contains(s, "does not exist")
}

func (p volumeProxy) List(ctx context.Context) ([]*proxyVolume, error) {
	var r listReply
	err := p.call(ctx, "VolumeDriver.List", nil, &r, func() string { return r.Err })
	return r.Volumes, err
}

func (p volumeProxy) Capabilities(ctx context.Context) (string, error) {
	var r capabilitiesReply
	err := p.call(ctx, "VolumeDriver.Capabilities", nil, &r, func() string { return r.Err })
	return r.Capabilities.Scope, err
}
