// Package httpstatus is the one place where error classes become HTTP status codes. Services classify
// errors with containerd/errdefs, routers with httputils.InvalidParameter and NotFound (errdefs classes),
// and stdlib-only packages with a marker method such as InvalidParameter(); nothing else in the tree picks
// a status for an error, and nothing picks one by reading an error's text.
package httpstatus

import (
	"context"
	"errors"
	"net/http"

	"github.com/containerd/errdefs"
)

type (
	invalidParameter interface{ InvalidParameter() }
	notFound         interface{ NotFound() }
	conflict         interface{ Conflict() }
	unavailable      interface{ Unavailable() }
)

// FromError maps an error's class to a status code; unclassified errors are 500.
func FromError(err error) int {
	if err == nil {
		return http.StatusOK
	}
	switch {
	case errdefs.IsNotFound(err) || is[notFound](err):
		return http.StatusNotFound
	case errdefs.IsInvalidArgument(err) || is[invalidParameter](err):
		return http.StatusBadRequest
	case errdefs.IsConflict(err) || errdefs.IsAlreadyExists(err) || errdefs.IsFailedPrecondition(err) || is[conflict](err):
		return http.StatusConflict
	case errdefs.IsUnavailable(err) || is[unavailable](err):
		return http.StatusServiceUnavailable
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsNotModified(err):
		return http.StatusNotModified
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errors.Is(err, context.DeadlineExceeded), errdefs.IsDeadlineExceeded(err):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func is[T any](err error) bool {
	var t T
	return errors.As(err, &t)
}
