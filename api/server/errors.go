package server

import (
	"context"
	"net/http"

	"github.com/berthd/berthd/api/server/httpstatus"
	"github.com/berthd/berthd/api/server/httputils"
	"github.com/containerd/log"
)

// writeError answers a handler's error and logs it once, here at the edge, when its class makes it a
// server error (>= 500): the layers below return errors without logging them, so without this line a 500
// would leave no trace in the daemon's log. Client errors (4xx) are the client's to read, as in dockerd.
func writeError(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	if code := httpstatus.FromError(err); code >= http.StatusInternalServerError {
		log.G(ctx).WithFields(log.Fields{
			"method": r.Method,
			"path":   r.URL.Path,
			"status": code,
		}).WithError(err).Errorf("Handler for %s %s returned error", r.Method, r.URL.Path)
	}
	httputils.WriteError(w, err)
}
