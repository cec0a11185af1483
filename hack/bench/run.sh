#!/usr/bin/env bash
# Runs every benchmark under hack/bench with bin/berthd beside Debian's dockerd; prints the tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v dockerd >/dev/null || ./hack/install-deps.sh
for b in hack/bench/*/; do
  name=$(basename "$b")
  [ "$name" = internal ] && continue
  [ -f "$b/main.go" ] || continue
  echo "### $name"
  go run "./$b" -berthd bin/berthd "$@" || echo "benchmark $name failed" >&2
done
