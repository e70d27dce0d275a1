#!/usr/bin/env bash
# The ctest `openapi` test: lints docs/openapi.yaml, then checks a live wachatd against it.
# Usage: scripts/openapi_check.sh [path/to/wachatd]   (needs WACHAT_TEST_DATABASE_URL)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/lint_openapi.sh"
node "$root/tests/contract/openapi_live.mjs" "${1:-$root/build/wachatd}"
