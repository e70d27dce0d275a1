#!/usr/bin/env bash
# Webhook intake benchmark (DESIGN.md §5): wachatd under wachat_loadgen, then bare PostgreSQL
# under wachat_pg_baseline with the same bodies, on one throwaway embedded PostgreSQL; prints
# both figures and their ratio. Only 127.0.0.1 traffic; everything it starts is stopped on exit.
#
# Usage: bench/run.sh
# Environment (defaults in brackets):
#   BENCH_DURATION [20]            measured seconds per phase (plus BENCH_WARMUP [2])
#   BENCH_RUNS [1]                 repetitions; with more than one, medians are printed too
#   BENCH_CLIENT [loadgen]         the load: wachat_loadgen, or "wrk" (Debian's wrk with
#                                  bench/wrk_webhooks.lua: distinct bodies signed per request,
#                                  the way a newcomer measures; installed when missing)
#   BENCH_CONNECTIONS [64]         loadgen keep-alive connections
#   BENCH_LOADGEN_THREADS [1]      loadgen io_context threads
#   BENCH_BODY_BYTES [1024]        approximate webhook body size, both phases
#   BENCH_BASELINE_CONNECTIONS [2] baseline connections (threads)
#   BENCH_BASELINE_BATCH [100]     baseline rows per INSERT/transaction
#   BENCH_BASELINE_STATEMENT [plain]  or "intake": the statement shape wachatd uses
#   BENCH_BASELINE_AUTOCOMMIT [0]  1: the INSERT alone, without BEGIN/COMMIT
#   BENCH_BUILD_DIR [build-bench]  build directory; BENCH_BUILD_JOBS [1]; BENCH_SKIP_BUILD=1
#   BENCH_WAIT_QUIET=1             before each phase, wait (bounded) until the shared machine is idle
#   BENCH_KEEP_LOGS=1              keep the work directory (logs, JSON lines) after exit;
#                                  BENCH_KEEP_PG_DATA=1 keeps its PostgreSQL data directory too
#   WACHAT_HTTP_THREADS, WACHAT_INTAKE_WRITERS, WACHAT_INTAKE_BATCH_MAX pass through to wachatd.
set -euo pipefail
WACHAT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$WACHAT_ROOT"
. scripts/lib/deps.sh
. scripts/lib/pg.sh
# bench_pg_start, psql_bench, cpu_of, pg_cpu, machine_busy, wait_quiet, json_num, median.
. bench/lib.sh

duration=${BENCH_DURATION:-20}
warmup=${BENCH_WARMUP:-2}
runs=${BENCH_RUNS:-1}
connections=${BENCH_CONNECTIONS:-64}
lg_threads=${BENCH_LOADGEN_THREADS:-1}
body_bytes=${BENCH_BODY_BYTES:-1024}
client=${BENCH_CLIENT:-loadgen}
case "$client" in loadgen|wrk) ;; *) echo "bench: BENCH_CLIENT must be loadgen or wrk, got '$client'" >&2; exit 2 ;; esac
base_connections=${BENCH_BASELINE_CONNECTIONS:-2}
base_batch=${BENCH_BASELINE_BATCH:-100}
base_statement=${BENCH_BASELINE_STATEMENT:-plain}
base_autocommit=${BENCH_BASELINE_AUTOCOMMIT:-0}
build_dir=${BENCH_BUILD_DIR:-$WACHAT_ROOT/build-bench}
for v in "$duration" "$warmup"; do
  [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench: BENCH_DURATION/BENCH_WARMUP must be seconds, got '$v'" >&2; exit 2; }
done
# Each client bounds itself by --duration; this outer limit only catches a wedged one.
guard_s=$(awk -v d="$duration" -v w="$warmup" 'BEGIN { printf "%d", d + w + 61 }')

if [ "$client" = wrk ]; then
  wachat_install_deps wrk
fi
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  wachat_install_deps
  cmake -S "$WACHAT_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWACHAT_BENCH=ON >&2
  cmake --build "$build_dir" -j"${BENCH_BUILD_JOBS:-1}" \
    --target wachatd wachat_loadgen wachat_pg_baseline >&2
fi

work=$(mktemp -d /tmp/wachat-bench.XXXXXX)
chmod 755 "$work"
wachatd_pid=""
cleanup() {
  # Only the script itself cleans up, never a pipeline's subshell that happens to exit.
  [ "$BASHPID" = "$$" ] || return 0
  if [ -n "$wachatd_pid" ] && kill -0 "$wachatd_pid" 2>/dev/null; then
    kill -TERM "$wachatd_pid" 2>/dev/null || true
    # wachatd promises to exit within 10 s of SIGTERM (API.md §1); don't wait for ever.
    for _ in $(seq 1 120); do
      kill -0 "$wachatd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$wachatd_pid" 2>/dev/null || true
  fi
  bench_remove_work "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_pg_start "$work"

app_secret=$(openssl rand -hex 32)
http_port=$(wachat_free_port)
WACHAT_DATABASE_URL="$db_url" WACHAT_LISTEN="127.0.0.1:$http_port" WHATSAPP_APP_SECRET="$app_secret" \
  "$build_dir/wachatd" > "$work/wachatd.log" 2>&1 &
wachatd_pid=$!
# Started when it listens (migrations are applied before that); bounded like everything here.
for _ in $(seq 1 300); do
  if ! kill -0 "$wachatd_pid" 2>/dev/null; then
    echo "bench: wachatd exited during start-up:" >&2
    cat "$work/wachatd.log" >&2
    exit 1
  fi
  grep -q 'event=listening' "$work/wachatd.log" && break
  sleep 0.1
done
grep -q 'event=listening' "$work/wachatd.log" || { echo "bench: wachatd did not start in 30 s" >&2; exit 1; }

pg_counters() {
  psql_bench "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                     wal_sync, wal_bytes FROM pg_stat_wal" | tr '|' ' '
}
pg_delta() {  # pg_delta "BEFORE" "AFTER" ROWS
  awk -v b="$1" -v a="$2" -v n="$3" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    c = y[1] - x[1]; f = y[2] - x[2]; w = y[3] - x[3]
    printf "postgres: %d commits (%.1f rows each), %d WAL flushes (%.1f commits each), %.0f MB WAL\n",
      c, (c > 0 ? n / c : 0), f, (f > 0 ? c / f : 0), w / 1048576
  }'
}
# wachatd's own count of group commits, when curl is there to ask /metrics.
intake_counters() {
  command -v curl >/dev/null || return 0
  curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" \
    | awk '/^wachat_webhooks_committed_total / { c = $2 } /^wachat_intake_batches_total / { b = $2 } END { print c + 0, b + 0 }'
}

# run_wrk RUN_ID: a warm-up, then the measured wrk run; prints wrk's report and one JSON line
# (bench/wrk_webhooks.lua's, with wrk's CPU seconds and the stored-rows check added). wrk
# reports no per-request outcome, so the check is by count: at least as many rows carry the
# run's wamids as wrk counted 2xx answers.
run_wrk() {
  local id=$1 before after cpu stored line ok me=$BASHPID  # this shell, not a $(...) one
  WRK_SECRET="$app_secret" WRK_RUN_ID="$id-warmup" WRK_BODY_BYTES="$body_bytes" \
    timeout "$guard_s" wrk -t"$lg_threads" -c"$connections" -d"${warmup}s" --timeout 10s \
    -s "$WACHAT_ROOT/bench/wrk_webhooks.lua" "http://127.0.0.1:$http_port" > /dev/null || return 1
  before=$(awk '{ print $16 + $17 }' "/proc/$me/stat")  # children's CPU: wrk once it is reaped
  WRK_SECRET="$app_secret" WRK_RUN_ID="$id" WRK_BODY_BYTES="$body_bytes" \
    timeout "$guard_s" wrk -t"$lg_threads" -c"$connections" -d"${duration}s" --timeout 10s --latency \
    -s "$WACHAT_ROOT/bench/wrk_webhooks.lua" "http://127.0.0.1:$http_port" > "$work/wrk-$id.out" || return 1
  after=$(awk '{ print $16 + $17 }' "/proc/$me/stat")
  cpu=$(awk -v a="$before" -v b="$after" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz }')
  line=$(grep '^{"tool":"wrk"' "$work/wrk-$id.out" | tail -1)
  stored=$(psql_bench "SELECT count(*) FROM wa_webhook_events
                       WHERE position(convert_to('\"wamid.$id.', 'UTF8') in body) > 0")
  ok=false
  [ "$stored" -ge "$(json_num acked "$line")" ] && ok=true
  grep -v '^{"tool":"wrk"' "$work/wrk-$id.out"
  echo "check-db: $stored rows stored for run $id, $(json_num acked "$line") acknowledged: $([ "$ok" = true ] && echo OK || echo MISSING)"
  # As wachat_loadgen's line: "sent" is what the CPU per webhook divides by.
  echo "${line%\}},\"sent\":$(json_num requests "$line"),\"cpu_s\":$cpu,\"check_db\":{\"ok\":$ok,\"rows\":$stored}}"
  [ "$ok" = true ]
}

echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: load from $client, $connections connections"
echo "bench: wachatd on 127.0.0.1:$http_port (HTTP threads ${WACHAT_HTTP_THREADS:-default}, intake writers ${WACHAT_INTAKE_WRITERS:-default}, batch max ${WACHAT_INTAKE_BATCH_MAX:-default}); PostgreSQL 15 on port $pg_port"

status=0
: > "$work/wachat.jsonl"
: > "$work/baseline.jsonl"
for run in $(seq 1 "$runs"); do
  echo "== run $run/$runs: wachat intake, $connections connections, ${duration}s =="
  # Every phase starts from an empty inbox with nothing left to flush: otherwise each phase
  # inherits the previous one's rows (bigger index, insert-triggered autovacuum) and dirty pages.
  psql_bench "TRUNCATE wa_webhook_events"
  psql_bench "CHECKPOINT"
  wait_quiet
  q0=$(pg_counters); i0=$(intake_counters)
  w0=$(cpu_of "$wachatd_pid"); p0=$(pg_cpu "$work/pg"); m0=$(machine_busy)
  set +e
  if [ "$client" = wrk ]; then
    run_wrk "bench-$$-$run" | tee "$work/loadgen-$run.out"
    rc=${PIPESTATUS[0]}
  else
    timeout "$guard_s" "$build_dir/wachat_loadgen" --host 127.0.0.1 --port "$http_port" \
      --connections "$connections" --threads "$lg_threads" --duration "$duration" --warmup "$warmup" \
      --secret "$app_secret" --body-bytes "$body_bytes" --run-id "bench-$$-$run" --check-db "$db_url" \
      | tee "$work/loadgen-$run.out"
    rc=${PIPESTATUS[0]}
  fi
  set -e
  sleep 0.5  # lets the postmaster reap the check's backend, so that its CPU is counted
  w1=$(cpu_of "$wachatd_pid"); p1=$(pg_cpu "$work/pg"); m1=$(machine_busy)
  q1=$(pg_counters); i1=$(intake_counters)
  line=$(tail -1 "$work/loadgen-$run.out")
  pg_delta "$q0" "$q1" "$(json_num acked "$line")"
  if [ -n "$i0" ] && [ -n "$i1" ]; then
    awk -v b="$i0" -v a="$i1" 'BEGIN { split(b, x, " "); split(a, y, " ")
      if (y[2] > x[2]) printf "wachatd intake: %d group commits, %.1f webhooks each\n", y[2] - x[2], (y[1] - x[1]) / (y[2] - x[2]) }'
  fi
  echo "$line" >> "$work/wachat.jsonl"
  # CPU per request is what survives a busy shared machine: it says what 2 idle cores could do.
  awk -v w="$w0" -v W="$w1" -v p="$p0" -v P="$p1" -v m="$m0" -v M="$m1" -v l="$(json_num cpu_s "$line")" \
    -v n="$(json_num sent "$line")" 'BEGIN {
      if (n < 1) n = 1
      printf "cpu seconds: wachatd %.1f, postgres %.1f, loadgen %.1f; others on the machine %.1f\n", W - w, P - p, l, (M - m) - (W - w) - (P - p) - l
      printf "cpu us per webhook: wachatd %.0f, postgres %.0f, loadgen %.0f\n", (W - w) * 1e6 / n, (P - p) * 1e6 / n, l * 1e6 / n
      printf "%.1f %.1f %.1f %.1f\n", (W - w) * 1e6 / n, (P - p) * 1e6 / n, l * 1e6 / n, (M - m) - (W - w) - (P - p) - l > "/dev/stderr"
    }' 2>> "$work/wachat-cpu.txt"
  if [ "$rc" -ne 0 ]; then
    echo "bench: wachat_loadgen exited $rc" >&2
    status=1
  fi
  if ! kill -0 "$wachatd_pid" 2>/dev/null; then
    echo "bench: wachatd died during the run; its log:" >&2
    tail -20 "$work/wachatd.log" >&2
    exit 1
  fi

  echo "== run $run/$runs: bare PostgreSQL, $base_connections connections, batches of $base_batch, ${duration}s =="
  psql_bench "TRUNCATE wa_webhook_events"
  psql_bench "CHECKPOINT"
  wait_quiet
  q0=$(pg_counters)
  p0=$(pg_cpu "$work/pg"); m0=$(machine_busy)
  set +e
  timeout "$guard_s" "$build_dir/wachat_pg_baseline" --db "$db_url" \
    --connections "$base_connections" --batch "$base_batch" --duration "$duration" --warmup "$warmup" \
    --statement "$base_statement" --autocommit "$base_autocommit" \
    --body-bytes "$body_bytes" --run-id "base-$$-$run" | tee "$work/baseline-$run.out"
  rc=${PIPESTATUS[0]}
  set -e
  sleep 0.5  # lets the postmaster reap the baseline's backends, so that their CPU is counted
  p1=$(pg_cpu "$work/pg"); m1=$(machine_busy)
  q1=$(pg_counters)
  line=$(tail -1 "$work/baseline-$run.out")
  echo "$line" >> "$work/baseline.jsonl"
  pg_delta "$q0" "$q1" "$(json_num rows "$line")"
  awk -v p="$p0" -v P="$p1" -v m="$m0" -v M="$m1" -v l="$(json_num cpu_s "$line")" \
    -v n="$(json_num rows "$line")" 'BEGIN {
      if (n < 1) n = 1
      printf "cpu seconds: postgres %.1f, baseline client %.1f; others on the machine %.1f\n", P - p, l, (M - m) - (P - p) - l
      printf "cpu us per row: postgres %.0f, baseline client %.0f\n", (P - p) * 1e6 / n, l * 1e6 / n
      printf "%.1f %.1f %.1f\n", (P - p) * 1e6 / n, l * 1e6 / n, (M - m) - (P - p) - l > "/dev/stderr"
    }' 2>> "$work/baseline-cpu.txt"
  if [ "$rc" -ne 0 ]; then
    echo "bench: wachat_pg_baseline exited $rc" >&2
    status=1
  fi
done

# Medians over the runs (a single run is its own median).
w_tput=$(while read -r l; do json_num throughput_2xx_per_s "$l"; done < "$work/wachat.jsonl" | median)
w_p50=$(while read -r l; do json_num p50 "$l"; done < "$work/wachat.jsonl" | median)
w_p99=$(while read -r l; do json_num p99 "$l"; done < "$work/wachat.jsonl" | median)
w_p999=$(while read -r l; do json_num p99_9 "$l"; done < "$work/wachat.jsonl" | median)
b_tput=$(while read -r l; do json_num rows_per_s "$l"; done < "$work/baseline.jsonl" | median)
lost_runs=$(grep -c '"check_db":{"ok":false' "$work/wachat.jsonl" || true)
ratio=$(awk -v a="$w_tput" -v b="$b_tput" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')
w_cpu_w=$(cut -d' ' -f1 "$work/wachat-cpu.txt" | median)
w_cpu_p=$(cut -d' ' -f2 "$work/wachat-cpu.txt" | median)
w_cpu_l=$(cut -d' ' -f3 "$work/wachat-cpu.txt" | median)
w_others=$(cut -d' ' -f4 "$work/wachat-cpu.txt" | median)
b_cpu_p=$(cut -d' ' -f1 "$work/baseline-cpu.txt" | median)
b_others=$(cut -d' ' -f3 "$work/baseline-cpu.txt" | median)
verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
echo "== summary: median of $runs run(s), ${duration}s each, body ~${body_bytes} B =="
echo "wachat intake:  $w_tput webhooks/s acknowledged after commit; latency ms p50 $w_p50, p99 $w_p99, p99.9 $w_p999"
echo "bare PostgreSQL: $b_tput rows/s ($base_connections connections, $base_batch rows per commit, $base_statement statement, autocommit $base_autocommit)"
echo "ratio wachat/baseline: $ratio"
echo "cpu us per webhook: wachatd $w_cpu_w, postgres $w_cpu_p, loadgen $w_cpu_l (all three: $(awk -v a="$w_cpu_w" -v b="$w_cpu_p" -v c="$w_cpu_l" 'BEGIN { printf "%.0f", a + b + c }'); 2 idle cores would allow at most $(awk -v a="$w_cpu_w" -v b="$w_cpu_p" -v c="$w_cpu_l" 'BEGIN { if (a + b + c > 0) printf "%.0f", 2e6 / (a + b + c); else print "n/a" }')/s)"
echo "cpu us per baseline row: postgres $b_cpu_p"
echo "others' cpu seconds on this shared machine during a phase (median): wachat phase $w_others, baseline phase $b_others"
echo "target >= 25000/s: $(verdict "$(awk -v a="$w_tput" 'BEGIN { print (a >= 25000) }')")"
echo "target p99 <= 25 ms: $(verdict "$(awk -v a="$w_p99" 'BEGIN { print (a <= 25) }')")"
echo "target nothing lost: $(verdict "$([ "$lost_runs" = 0 ] && [ -s "$work/wachat.jsonl" ] && echo 1 || echo 0)")"
exit "$status"
