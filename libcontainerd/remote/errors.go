package remote

import (
	"strings"

	"github.com/berthd/berthd/libcontainerd/types"
	ctderrdefs "github.com/containerd/containerd/errdefs"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc/status"
)

// classify puts a containerd error into a containerd/errdefs class exactly once. The v1.7 client already
// converts most gRPC errors, and converting twice would turn a class into Unknown (FromGRPC reads only
// gRPC codes), so errors that already carry a class are returned as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errdefs.Resolve(err) != errdefs.ErrUnknown {
		return err
	}
	if _, ok := status.FromError(err); ok {
		return ctderrdefs.FromGRPC(err)
	}
	return err
}

func invalidArg(msg string) error { return errdefs.ErrInvalidArgument.WithMessage(msg) }

func isAlreadyExists(err error) bool { return errdefs.IsAlreadyExists(err) }

// startError classifies a failure to create or start a task or an exec process. runc reports the
// process's own configuration errors (missing or non-executable command, missing cwd, a mount of a file
// onto a directory) only in text, with gRPC code Unknown: this adapter is where that text is born for
// berthd, so it is read here, once, and turned into a typed ProcessStartError.
func startError(err error) error {
	err = classify(err)
	if err == nil || errdefs.Resolve(err) != errdefs.ErrUnknown {
		return err
	}
	msg := err.Error()
	lower := strings.ToLower(msg)
	if !strings.Contains(lower, "unable to start container process") && !strings.Contains(lower, "starting container process caused") {
		return err
	}
	reason := types.ProcessConfigRefused
	switch {
	case strings.Contains(lower, "executable file not found"), strings.Contains(lower, "exec: ") && strings.Contains(lower, "no such file or directory"):
		reason = types.CommandNotFound
	case strings.Contains(lower, "exec: ") && (strings.Contains(lower, "permission denied") || strings.Contains(lower, "is a directory")):
		reason = types.CommandNotInvokable
	case strings.Contains(lower, "not a directory"):
		reason = types.MountTypeMismatch
	case strings.Contains(lower, "permission denied"):
		reason = types.CommandNotInvokable
	}
	return &types.ProcessStartError{Reason: reason, Msg: msg}
}
