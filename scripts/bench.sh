#!/usr/bin/env bash
# npm run bench [-- --scenario NAME] [--json FILE] [--quick]
# Sets the machine up (scripts/setup.sh), installs the benchmark's own system packages (iperf3,
# haproxy) when missing, raises the open-files limit the idle scenario needs (10,000 proxied
# connections: the lab's pods and agents inherit it), then runs the harness (dist/bench/run.js).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "weft bench: the benchmark builds network namespaces; run it as root" >&2
  exit 1
fi

bash scripts/setup.sh

need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v haproxy >/dev/null || need+=(haproxy)
command -v openssl >/dev/null || need+=(openssl)
command -v prlimit >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "weft bench: installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

nofile=262144
ulimit -Hn "$nofile" 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

exec node dist/bench/run.js "$@"
