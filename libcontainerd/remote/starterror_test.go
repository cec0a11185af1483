package remote

import (
	"testing"

	"github.com/berthd/berthd/libcontainerd/types"
	"github.com/containerd/errdefs"
	"github.com/pkg/errors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gotest.tools/v3/assert"
)

func TestStartErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want types.StartFailure
	}{
		{`OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchbin": executable file not found in $PATH`, types.CommandNotFound},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec: "/nonexist/x": stat /nonexist/x: no such file or directory`, types.CommandNotFound},
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/etc/passwd": permission denied`, types.CommandNotInvokable},
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "/x" to rootfs at "/etc/hostname": not a directory`, types.MountTypeMismatch},
		{`OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/nonexist") set in config.json failed: no such file or directory`, types.ProcessConfigRefused},
	} {
		err := startError(status.Error(codes.Unknown, tc.msg))
		var pse *types.ProcessStartError
		assert.Assert(t, errors.As(err, &pse), "%s: %v", tc.msg, err)
		assert.Check(t, pse.Reason == tc.want, "%s: %v", tc.msg, pse.Reason)
		assert.Check(t, errdefs.IsInvalidArgument(err))
	}
	// Failures of the runtime itself keep their class.
	err := startError(status.Error(codes.Unavailable, "connection refused"))
	assert.Check(t, errdefs.IsUnavailable(err), "%v", err)
	err = startError(status.Error(codes.Unknown, "shim died"))
	assert.Check(t, !errors.As(err, new(*types.ProcessStartError)), "%v", err)
}
