#!/usr/bin/env bash
# npm run fuzz [-- --time S | --runs N] [--target NAME] [--seed N] [--json FILE]
# Builds, then runs every fuzz target (test/fuzz/targets.ts) for a bounded time (default 20 s
# each) or count and prints how many generated inputs each survived. No root, no network
# namespaces: the CA and HBONE targets listen on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
exec node dist/test/fuzz/run.js "$@"
