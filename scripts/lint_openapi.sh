#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly's recommended rules (tools/openapi/redocly.yaml).
# Installs the pinned tools from tools/openapi/package-lock.json first when they are missing
# or older than the lock file. Exits non-zero on any lint error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/tools/openapi"

# npm writes node_modules/.package-lock.json on every install: older than the lock = outdated.
if [ ! -f "$tools/node_modules/.package-lock.json" ] ||
   [ "$tools/package-lock.json" -nt "$tools/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$tools" --no-audit --no-fund
fi

# No telemetry and no update check: CI reaches only the package registries.
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "$tools/node_modules/.bin/redocly" lint --config "$tools/redocly.yaml" --format stylish \
  "$root/docs/openapi.yaml"
