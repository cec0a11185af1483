#!/usr/bin/env bash
# Installs what berthd and its test suite need on Debian, only what is missing: containerd and runc (the
# runtime), the docker CLI (tests drive berthd with it), busybox-static and tini (test images, --init),
# docker-registry (pull/push tests), docker-compose 1.29 (compose scenario tests), docker.io's dockerd (reference for benchmarks only).
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v docker >/dev/null && command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -q '^wget$' || need+=(busybox-static)
command -v tini >/dev/null || need+=(tini)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
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
