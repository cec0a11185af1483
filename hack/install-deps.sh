#!/usr/bin/env bash
# Installs what berthd and its test suite need on Debian, only what is missing: containerd and runc (the
# runtime), the docker CLI (tests drive berthd with it), busybox-static and tini (test images, --init),
# docker-registry (pull/push tests), openssh-client (ssh-agent for BuildKit --ssh tests), docker-compose 1.29 and compose v2
# (compose scenario tests; v2 built from its Go module), docker.io's dockerd (reference for benchmarks only).
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v docker >/dev/null && command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -q '^wget$' || need+=(busybox-static)
command -v tini >/dev/null || need+=(tini)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v ssh-agent >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
python3 -c 'import docker' 2>/dev/null || need+=(python3-docker)
command -v git >/dev/null || need+=(git)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || need+=(golang-go)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian docker.io package may start a containerd and dockerd through systemd; berthd never needs them.
# compose v2 (the compose scenario tests install it as a CLI plugin in a private DOCKER_CONFIG) is built
# from its Go module, as docker-compose-v2 beside Debian's docker-compose 1.29. `go install pkg@version`
# refuses its go.mod (it has exclude directives), so it is built inside the downloaded module; the Go
# module cache keeps the sources for the next run.
COMPOSE_V2_VERSION=v2.40.3
if ! command -v docker-compose-v2 >/dev/null; then
  gocmd=$(command -v go || echo /usr/local/go/bin/go)
  echo "building docker-compose-v2 ($COMPOSE_V2_VERSION) from github.com/docker/compose/v2" >&2
  moddir=$(cd / && GOFLAGS=-mod=mod "$gocmd" mod download -json "github.com/docker/compose/v2@$COMPOSE_V2_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  (cd "$moddir" && GOFLAGS=-buildvcs=false "$gocmd" build -trimpath \
    -ldflags "-X github.com/docker/compose/v2/internal.Version=$COMPOSE_V2_VERSION" -o /usr/local/bin/docker-compose-v2 ./cmd)
fi
