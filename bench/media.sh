#!/usr/bin/env bash
# Customers' media (issue 14 targets), into a local fake Graph API on one throwaway PostgreSQL,
# with wachat_media_bench (bench/media_bench.cpp):
#   large   one 100 MB document: seconds to store it, wachatd's resident memory growth (target:
#           under 32 MiB - it streams to disk)
#   mixed   1,000 text webhooks alone, then beside 200 images of 1 MB being downloaded, then
#           alone again: the texts' slowdown (target: at most 10 %), and the media's time,
#           with the media pool holding back for inbound work and without (A/B)
# Usage: bench/media.sh
# Environment: BENCH_RUNS [3], BENCH_MEDIA [200], BENCH_TEXTS [1000], BENCH_MEDIA_WORKERS [4],
#   BENCH_MEDIA_YIELD_MS [1000] (the B side of the mixed A/B; A is 0),
#   BENCH_BUILD_DIR [build-bench3], BENCH_BUILD_JOBS [1], BENCH_SKIP_BUILD=1.
set -euo pipefail
WACHAT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$WACHAT_ROOT"
. scripts/lib/deps.sh
. scripts/lib/pg.sh
. bench/lib.sh

runs=${BENCH_RUNS:-3}
build_dir=${BENCH_BUILD_DIR:-$WACHAT_ROOT/build-bench3}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  wachat_install_deps
  cmake -S "$WACHAT_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWACHAT_TESTS=ON \
    -DWACHAT_BENCH=ON >&2
  cmake --build "$build_dir" -j"${BENCH_BUILD_JOBS:-1}" --target wachatd wachat_media_bench >&2
fi

work=$(mktemp -d /tmp/wachat-media.XXXXXX)
chmod 755 "$work"
trap 'bench_remove_work "$work"' EXIT
bench_pg_start "$work"
export WACHAT_TEST_DATABASE_URL="${db_url/wachat_bench/postgres}"
bench_use_wachatd "$build_dir"

for run in $(seq "$runs"); do
  wait_quiet
  "$build_dir/wachat_media_bench" --mode large --size-mb 100 --label "large-$run" | tee -a "$work/large.jsonl"
done
# Interleaved A/B: downloads competing with the texts (--yield-ms 0, as before the media pool
# held back for inbound work) and as configured by default.
for run in $(seq "$runs"); do
  for yield in 0 "${BENCH_MEDIA_YIELD_MS:-1000}"; do
    wait_quiet
    "$build_dir/wachat_media_bench" --mode mixed --media "${BENCH_MEDIA:-200}" --size-kb 1024 \
      --texts "${BENCH_TEXTS:-1000}" --workers "${BENCH_MEDIA_WORKERS:-4}" --yield-ms "$yield" \
      --label "mixed-yield$yield-$run" | tee -a "$work/mixed-$yield.jsonl"
  done
done
echo "median RSS growth (MiB) for 100 MB: $(while read -r l; do json_num rss_growth_mib "$l"; done < "$work/large.jsonl" | median)"
for f in "$work"/mixed-*.jsonl; do
  yield=$(basename "$f" .jsonl)
  echo "median text slowdown beside media, ${yield#mixed-}: $(while read -r l; do json_num slowdown "$l"; done < "$f" | median);" \
    "media seconds: $(while read -r l; do json_num media_seconds "$l"; done < "$f" | median)"
done
