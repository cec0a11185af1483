//go:build tools

// Package tools pins the libraries of design.md §5 that are used only by tests, benchmarks or code not yet
// written, so that every package in the tree resolves the same versions and helpers never race on go.mod.
package tools

import (
	_ "github.com/containerd/containerd"
	_ "github.com/containerd/containerd/archive"
	_ "github.com/containerd/containerd/cio"
	_ "github.com/containerd/containerd/content"
	_ "github.com/containerd/containerd/images"
	_ "github.com/containerd/containerd/images/archive"
	_ "github.com/containerd/containerd/leases"
	_ "github.com/containerd/containerd/mount"
	_ "github.com/containerd/containerd/namespaces"
	_ "github.com/containerd/containerd/oci"
	_ "github.com/containerd/containerd/remotes/docker"
	_ "github.com/containerd/containerd/snapshots"
	_ "github.com/containerd/errdefs"
	_ "github.com/containerd/log"
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/distribution/reference"
	_ "github.com/docker/docker/client"
	_ "github.com/docker/go-connections/sockets"
	_ "github.com/docker/go-connections/tlsconfig"
	_ "github.com/docker/go-plugins-helpers/volume"
	_ "github.com/docker/go-units"
	_ "github.com/moby/locker"
	_ "github.com/moby/sys/mountinfo"
	_ "github.com/moby/term"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/pkg/errors"
	_ "github.com/spf13/pflag"
	_ "go.etcd.io/bbolt"
	_ "gotest.tools/v3/assert"
)
