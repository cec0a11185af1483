package layer

import (
	"context"
	"sort"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/pkg/errors"
)

// Priority is the order in which snapshotters are tried when none is configured: the first one containerd
// loaded without error wins, as dockerd walks its graphdriver priority list.
var Priority = []string{"overlayfs", "native"}

// aliases maps dockerd's graphdriver names to the snapshotters that play their part, so a daemon.json
// written for dockerd keeps working.
var aliases = map[string]string{"overlay2": "overlayfs", "overlay": "overlayfs", "vfs": "native"}

const snapshotterType = "io.containerd.snapshotter.v1"

// Snapshotters reports the snapshotters containerd knows, each with "" when it loaded or the reason it did
// not.
func Snapshotters(ctx context.Context, client *containerd.Client) (map[string]string, error) {
	resp, err := client.IntrospectionService().Plugins(ctx, []string{"type==" + snapshotterType})
	if err != nil {
		return nil, errors.Wrap(errdefs.ErrUnavailable.WithMessage(err.Error()), "list containerd snapshotters")
	}
	out := map[string]string{}
	for _, p := range resp.Plugins {
		reason := ""
		if p.InitErr != nil {
			reason = p.InitErr.Message
			if reason == "" {
				reason = "failed to initialise"
			}
		}
		out[p.ID] = reason
	}
	return out, nil
}

// SelectSnapshotter picks the snapshotter for images and containers. requested is --storage-driver,
// daemon.json's storage-driver or BERTH_DRIVER (the caller resolves precedence); a requested snapshotter
// that containerd cannot use is an error, while an unusable one on the priority list is skipped with its
// reason logged.
func SelectSnapshotter(ctx context.Context, client *containerd.Client, requested string) (string, error) {
	avail, err := Snapshotters(ctx, client)
	if err != nil {
		return "", err
	}
	return choose(ctx, avail, requested)
}

func choose(ctx context.Context, avail map[string]string, requested string) (string, error) {
	if requested = strings.TrimSpace(requested); requested != "" {
		name := requested
		if a, ok := aliases[name]; ok {
			name = a
		}
		reason, ok := avail[name]
		if !ok {
			known := make([]string, 0, len(avail))
			for k := range avail {
				known = append(known, k)
			}
			sort.Strings(known)
			return "", errdefs.ErrInvalidArgument.WithMessage("storage driver " + requested + " is not supported by containerd (available: " + strings.Join(known, ", ") + ")")
		}
		if reason != "" {
			return "", errdefs.ErrFailedPrecondition.WithMessage("storage driver " + requested + " cannot be used: " + reason)
		}
		return name, nil
	}
	for _, name := range Priority {
		reason, ok := avail[name]
		switch {
		case !ok:
			log.G(ctx).WithField("driver", name).Info("storage driver skipped: not provided by containerd")
		case reason != "":
			log.G(ctx).WithField("driver", name).WithField("reason", reason).Info("storage driver skipped: not supported")
		default:
			return name, nil
		}
	}
	return "", errdefs.ErrFailedPrecondition.WithMessage("no supported storage driver found (tried " + strings.Join(Priority, ", ") + ")")
}

// DriverStatus is what `docker info` shows under the storage driver.
func DriverStatus(name string) [][2]string {
	return [][2]string{{"driver-type", snapshotterType}, {"Snapshotter", name}}
}
