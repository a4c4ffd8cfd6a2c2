#!/usr/bin/env bash
# Runs every test: unit tests and the network-namespace end-to-end suite (needs root on Linux).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(id -u)" != 0 ]; then
  echo "weft test: the end-to-end suite builds network namespaces and must run as root" >&2
  exit 1
fi
# Leftovers of a crashed earlier run are removed by the lab's own prefix before anything starts.
node dist/agent/cli/main.js lab down --all >/dev/null 2>&1 || true
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 "$@" "${files[@]}"
