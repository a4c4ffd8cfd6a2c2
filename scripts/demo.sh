#!/usr/bin/env bash
# npm run demo [-- --keep] [--count N] [--name LAB] [--kubernetes]
# Sets the machine up (scripts/setup.sh: iproute2, iptables, prometheus, ... and the build), then
# brings up the bookinfo lab, sends bounded traffic through the mesh, prints what the agents and
# the lab's Prometheus saw, and tears the lab down (examples/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "weft demo: the lab builds network namespaces; run it as root (sudo npm run demo)" >&2
  exit 1
fi
bash scripts/setup.sh
exec node dist/examples/demo.js "$@"
