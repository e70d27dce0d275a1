#!/usr/bin/env bash
# Installs what is missing, builds, starts a throwaway PostgreSQL, runs every test, stops it.
# Usage: scripts/test.sh        WACHAT_SANITIZE=1 scripts/test.sh  (address + UB sanitizers)
set -euo pipefail
WACHAT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$WACHAT_ROOT"
. scripts/lib/deps.sh
. scripts/lib/pg.sh

# clang and its sanitizer runtime build the libFuzzer target; node/npm run the OpenAPI linter and
# the console's browser tests, which drive Debian's chromium.
# Node comes from Debian only when no node is there (a nodesource node already bundles npm).
node_pkgs=()
command -v node >/dev/null || node_pkgs+=(nodejs)
command -v npm >/dev/null || node_pkgs+=(npm)
wachat_install_deps clang libclang-rt-14-dev chromium "${node_pkgs[@]}"
build_dir="$WACHAT_ROOT/build"
extra=()
if [ "${WACHAT_SANITIZE:-0}" = 1 ]; then
  build_dir="$WACHAT_ROOT/build-sanitize"
  extra+=(-DWACHAT_SANITIZE=ON)
fi
wachat_build "$build_dir" "${extra[@]}"

pg_dir=$(mktemp -d /tmp/wachat-test-pg.XXXXXX)
chmod 755 "$pg_dir"
cleanup() {
  wachat_pg_stop "$pg_dir/data"
  rm -rf "$pg_dir"
}
trap cleanup EXIT
pw=$(openssl rand -hex 16)
echo "$pw" > "$pg_dir/pw"
wachat_pg_init "$pg_dir/data" "$pg_dir/pw"
pg_port=$(wachat_free_port)
wachat_pg_start "$pg_dir/data" "$pg_port" "$pg_dir/postgresql.log"
export WACHAT_TEST_DATABASE_URL="postgresql://wachat:$pw@127.0.0.1:$pg_port/postgres"
# Tests that stop and restart the database (outage handling) use these.
export WACHAT_TEST_PG_DATA="$pg_dir/data"
export WACHAT_TEST_PG_PORT="$pg_port"
export WACHAT_TEST_PG_LOG="$pg_dir/postgresql.log"
# The benches' way to run another build's wachatd: the tests run this build's, always.
unset WACHAT_TEST_WACHATD

(cd "$build_dir" && ctest --output-on-failure --timeout 900)

# Bounded fuzzing of the webhook parser (a crash fails the run; its input lands in fuzz-corpus-out/).
WACHAT_FUZZ_SECONDS="${WACHAT_FUZZ_SECONDS:-60}" WACHAT_FUZZ_JOBS=2 fuzz/run.sh
