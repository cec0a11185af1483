package remote

import (
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
