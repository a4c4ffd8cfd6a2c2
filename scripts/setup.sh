#!/usr/bin/env bash
# Installs what Weft's commands need on a fresh Debian machine: system tools through apt-get
# (only the missing ones), npm packages (when package-lock changed), and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iptables-restore >/dev/null || need+=(iptables)
command -v nsenter >/dev/null || need+=(util-linux)
command -v tcpdump >/dev/null || need+=(tcpdump)
# kubectl renders and checks daemonset/ (test/daemonset.test.ts) and talks to the Kubernetes-mode lab.
command -v kubectl >/dev/null || need+=(kubernetes-client)
# The lab runs a real Prometheus scraping its agents (agent/lab/prometheus.ts). Debian's package
# also enables a system-wide prometheus.service; the lab's own runs in its fabric namespace.
command -v prometheus >/dev/null || need+=(prometheus)
# The dashboard's browser test (test/dashboard/browser.test.ts) drives Debian's Chromium headless.
command -v chromium >/dev/null || need+=(chromium)
for extra in ${WEFT_EXTRA_APT:-}; do command -v "${extra%%:*}" >/dev/null || need+=("${extra#*:}"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "weft setup: missing ${need[*]}; run as root (or install them) and try again" >&2
    exit 1
  fi
  echo "weft setup: installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # Install without starting services (Debian's policy-rc.d convention): the lab runs its own
  # Prometheus inside its fabric namespace, and no machine-wide one should start listening.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi

# Optional: independent HTTP/2 and gRPC implementations for interop tests (test/tunnel/h2-interop
# skips its python h2 case without h2; the waypoint's gRPC test skips its grpcio case without
# grpcio), so a failed install warns only. Debian's python3-h2 through apt; otherwise h2 and
# grpcio with pip, from whatever index pip is configured with (a machine may carry a local one).
if ! /usr/bin/python3 -c 'import h2' 2>/dev/null && ! python3 -c 'import h2' 2>/dev/null && [ "$(id -u)" = 0 ]; then
  # A fresh machine may have no package lists yet (the required installs above update them only when they ran).
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] || timeout 120 apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends python3-h2 >/dev/null 2>&1 || true
fi
for module in h2 grpc; do
  if ! /usr/bin/python3 -c "import $module" 2>/dev/null && ! python3 -c "import $module" 2>/dev/null; then
    package=$module; [ "$module" = grpc ] && package=grpcio
    timeout 300 python3 -m pip install -q --disable-pip-version-check "$package" >/dev/null 2>&1 ||
      echo "weft setup: python $package could not be installed; the interop tests that need it skip" >&2
  fi
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -p tsconfig.json
