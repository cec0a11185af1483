package httputils

import "github.com/containerd/errdefs"

// The routers' own errors (bad query values, unknown sub-paths) are classified here, once, so that routers
// need no error library of their own (they import only api/types and api/server/...) and keep no copies of
// marker types. The classes are containerd/errdefs', which api/server/httpstatus maps to status codes;
// Error() is exactly msg, as dockerd words it.

// InvalidParameter is a 400: the request itself is wrong.
func InvalidParameter(msg string) error { return errdefs.ErrInvalidArgument.WithMessage(msg) }

// NotFound is a 404.
func NotFound(msg string) error { return errdefs.ErrNotFound.WithMessage(msg) }
