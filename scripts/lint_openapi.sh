#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly's recommended rules (tools/openapi/redocly.yaml).
# Installs the pinned tools from tools/openapi/package-lock.json first when they are missing
# or older than the lock file. Exits non-zero on any lint error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/tools/openapi"
. "$root/scripts/lib/npm_tools.sh"
wachat_npm_tools "$tools"

# No telemetry and no update check: CI reaches only the package registries.
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "$tools/node_modules/.bin/redocly" lint --config "$tools/redocly.yaml" --format stylish \
  "$root/docs/openapi.yaml"
