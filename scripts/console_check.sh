#!/usr/bin/env bash
# The ctest `console` test: drives the console (/console/) in Debian's headless chromium against a
# live wachatd and a fake Graph API. Installs the pinned playwright-core from
# tools/browser/package-lock.json when missing or older than the lock file; chromium itself comes
# from Debian (scripts/test.sh installs it). Screenshots go to $WACHAT_CONSOLE_ARTIFACTS
# (default build/console-artifacts).
# Usage: scripts/console_check.sh [path/to/wachatd]   (needs WACHAT_TEST_DATABASE_URL)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/npm_tools.sh"
wachat_npm_tools "$root/tools/browser"
if [ ! -x "${WACHAT_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "console check: no chromium at ${WACHAT_CHROMIUM:-/usr/bin/chromium} (apt-get install chromium)" >&2
  exit 1
fi
wachatd="${1:-$root/build/wachatd}"
export WACHAT_CONSOLE_ARTIFACTS="${WACHAT_CONSOLE_ARTIFACTS:-$(dirname "$wachatd")/console-artifacts}"
exec node "$root/tests/browser/console.test.mjs" "$wachatd"
