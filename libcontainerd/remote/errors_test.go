package remote

import (
	"context"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gotest.tools/v3/assert"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		is   func(error) bool
	}{
		{"grpc not found", status.Error(codes.NotFound, "container x: not found"), errdefs.IsNotFound},
		{"grpc already exists", status.Error(codes.AlreadyExists, "x"), errdefs.IsAlreadyExists},
		{"grpc unavailable", status.Error(codes.Unavailable, "conn refused"), errdefs.IsUnavailable},
		{"grpc failed precondition", status.Error(codes.FailedPrecondition, "running"), errdefs.IsFailedPrecondition},
		{"grpc deadline", status.Error(codes.DeadlineExceeded, "slow"), errdefs.IsDeadlineExceeded},
		{"already classified", errors.Wrap(errdefs.ErrNotFound, "no such container"), errdefs.IsNotFound},
		{"classified twice stays", classify(status.Error(codes.Unimplemented, "x")), errdefs.IsNotImplemented},
		{"context canceled", context.Canceled, errdefs.IsCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			assert.Check(t, tc.is(got), "%v", got)
			assert.Check(t, classify(got) == got, "classify must be idempotent")
		})
	}
	assert.Check(t, classify(nil) == nil)
	plain := errors.New("plain")
	assert.Check(t, classify(plain) == plain)
}
