package httpstatus

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	pkgerrors "github.com/pkg/errors"
	"gotest.tools/v3/assert"
)

type marked struct{}

func (marked) Error() string     { return "bad filter" }
func (marked) InvalidParameter() {}

func TestFromError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, 200},
		{errors.New("plain"), 500},
		{errdefs.ErrNotFound.WithMessage("no such volume"), 404},
		{pkgerrors.Wrap(errdefs.ErrNotFound, "get x"), 404},
		{fmt.Errorf("remove x: %w", errdefs.ErrConflict.WithMessage("volume is in use")), 409},
		{errdefs.ErrAlreadyExists, 409},
		{errdefs.ErrFailedPrecondition, 409},
		{errdefs.ErrInvalidArgument.WithMessage("bad name"), 400},
		{pkgerrors.Wrap(marked{}, "list"), 400},
		{errdefs.ErrUnavailable, 503},
		{errdefs.ErrNotImplemented, 501},
		{errdefs.ErrNotModified, 304},
		{errdefs.ErrPermissionDenied, 403},
		{errdefs.ErrUnauthenticated, 401},
		{context.DeadlineExceeded, 504},
	} {
		assert.Check(t, FromError(tc.err) == tc.code, "%v: got %d want %d", tc.err, FromError(tc.err), tc.code)
	}
}
