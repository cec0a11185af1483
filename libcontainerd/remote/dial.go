package remote

import (
	"time"

	"github.com/berthd/berthd/metrics"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/pkg/dialer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// WithMetrics dials containerd as its client does by default (containerd.WithDialOpts replaces the
// defaults, so they are repeated here) plus interceptors timing every call for the metrics endpoint.
func WithMetrics() containerd.ClientOpt {
	bo := backoff.DefaultConfig
	bo.MaxDelay = 3 * time.Second
	unary, stream := metrics.ContainerdInterceptors()
	return containerd.WithDialOpts([]grpc.DialOption{
		grpc.WithBlock(), //nolint:staticcheck // containerd v1.7's own default
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.FailOnNonTempDialError(true), //nolint:staticcheck // containerd v1.7's own default
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo}),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithReturnConnectionError(), //nolint:staticcheck // containerd v1.7's own default
		grpc.WithChainUnaryInterceptor(unary),
		grpc.WithChainStreamInterceptor(stream),
	})
}
