#!/usr/bin/env bash
# Agents' sends end to end (issue 13 targets), into a local fake Graph API on one throwaway
# PostgreSQL, with wachat_send_bench (bench/send_bench.cpp):
#   throughput  BENCH_SENDS texts over BENCH_CONVERSATIONS conversations of BENCH_SITES sites
#               (each its own phone number, its rate raised to 1,000/s, the most Meta allows a
#               number: the site actor paces a number at 952/s, so 2,000/s takes three or more),
#               the API waiting for Meta's answer (201): sends/s at the fake, the send API's
#               latency, and the fake's own latency measured directly in the same run
#   offered     the same sends at a fixed BENCH_OFFERED per second (open loop; 0 skips it): the
#               send API's latency at that rate, each send's counted from when it was due
#   default     1,000 sends queued at once (202) at the default 80/s: all delivered, none twice,
#               the most in any one second at the fake
# Usage: bench/sending.sh
# Environment: BENCH_RUNS [3], BENCH_SENDS [10000], BENCH_CONVERSATIONS [400], BENCH_CLIENTS [32],
#   BENCH_SITES [4], BENCH_OFFERED [2000],
#   BENCH_BUILD_DIR [build-bench3], BENCH_BUILD_JOBS [1], BENCH_SKIP_BUILD=1, BENCH_KEEP_LOGS=1.
set -euo pipefail
WACHAT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$WACHAT_ROOT"
. scripts/lib/deps.sh
. scripts/lib/pg.sh
. bench/lib.sh

runs=${BENCH_RUNS:-3}
sends=${BENCH_SENDS:-10000}
conversations=${BENCH_CONVERSATIONS:-400}
clients=${BENCH_CLIENTS:-32}
sites=${BENCH_SITES:-4}
build_dir=${BENCH_BUILD_DIR:-$WACHAT_ROOT/build-bench3}

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  wachat_install_deps
  # The tool reuses the test support (fake Graph, wachatd launcher), so tests stay on here.
  cmake -S "$WACHAT_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWACHAT_TESTS=ON \
    -DWACHAT_BENCH=ON >&2
  cmake --build "$build_dir" -j"${BENCH_BUILD_JOBS:-1}" --target wachatd wachat_send_bench >&2
fi

work=$(mktemp -d /tmp/wachat-sending.XXXXXX)
chmod 755 "$work"
trap 'bench_remove_work "$work"' EXIT
bench_pg_start "$work"
# The tool makes a fresh database per run through this (superuser) URL.
export WACHAT_TEST_DATABASE_URL="${db_url/wachat_bench/postgres}"
bench_use_wachatd "$build_dir"

for run in $(seq "$runs"); do
  wait_quiet
  "$build_dir/wachat_send_bench" --sends "$sends" --conversations "$conversations" --clients "$clients" \
    --sites "$sites" --rate 1000 --wait-ms 10000 --label "throughput-$run" | tee -a "$work/throughput.jsonl"
done
offered=${BENCH_OFFERED:-2000}
if [ "$offered" != 0 ]; then
  for run in $(seq "$runs"); do
    wait_quiet
    # Twice the clients: at 2,000/s each of 64 has 32 ms for a send before the next is due.
    "$build_dir/wachat_send_bench" --sends "$sends" --conversations "$conversations" --clients $((clients * 2)) \
      --sites "$sites" --rate 1000 --wait-ms 10000 --offered "$offered" --label "offered-$run" | tee -a "$work/offered.jsonl"
  done
fi
for run in $(seq "$runs"); do
  wait_quiet
  "$build_dir/wachat_send_bench" --sends 1000 --conversations 100 --clients 16 --rate 80 --wait-ms 0 \
    --label "default-rate-$run" | tee -a "$work/default.jsonl"
done
echo "median sends/s: $(while read -r l; do json_num sends_per_s "$l"; done < "$work/throughput.jsonl" | median)"
echo "median fake direct requests/s: $(grep -o '"requests_per_s":[0-9.]*' "$work/throughput.jsonl" | cut -d: -f2 | median)"
# api_latency sorts before fake_direct in the tool's JSON: the first p99 is the send API's.
echo "median send API p99 ms, closed loop: $(while read -r l; do json_num p99 "$l"; done < "$work/throughput.jsonl" | median)"
if [ -s "$work/offered.jsonl" ]; then
  echo "median send API p99 ms at $offered/s offered: $(while read -r l; do json_num p99 "$l"; done < "$work/offered.jsonl" | median)"
fi
