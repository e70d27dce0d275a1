#!/usr/bin/env bash
# Inbound processing benchmark (DESIGN.md §5), end to end on one throwaway PostgreSQL:
#   backlog   N webhooks from V visitors put straight into the inbox as 'pending', then wachatd
#             started: time until every row is finished and N messages are stored;
#             beside it, bare PostgreSQL writing the same visitors, conversations and messages
#   live      the same through HTTP: signed webhooks from wachat_loadgen at a target rate,
#             first delivery -> last message stored
#   sse       open loop at 2,000 webhooks/s, one SSE subscriber: webhook acknowledged ->
#             message.created event, percentiles
#   resident  messages from 100,000 distinct visitors with a long idle time: wachatd's VmRSS and
#             wachat_conversation_actors; then with a short idle time the gauge falling to 0 and a
#             new message of an old visitor bringing one back, into the same conversation
# Only 127.0.0.1 traffic; everything it starts is stopped on exit.
#
# Usage: bench/processing.sh
# Environment (defaults in brackets):
#   BENCH_PHASES ["backlog live sse resident"]  which phases, in this order
#   BENCH_RUNS [3]                  repetitions of backlog, live and sse (medians printed)
#   BENCH_BACKLOG [100000]          messages in the backlog phase (and the baseline)
#   BENCH_VISITORS [10000]          distinct senders in backlog, live and sse
#   BENCH_LIVE_COUNT [100000]       webhooks sent in the live phase
#   BENCH_LIVE_RATE [10000]         their target rate per second (0: as fast as answered)
#   BENCH_CONNECTIONS [64]          loadgen connections (live and sse)
#   BENCH_SSE_RATE [2000]           webhooks/s in the sse phase, BENCH_SSE_DURATION [20] seconds
#   BENCH_RESIDENT [100000]         distinct visitors in the resident phase
#   BENCH_SHORT_IDLE_MS [5000]      WACHAT_CONVERSATION_IDLE_MS for the second resident step
#   BENCH_BUILD_DIR [build-bench2]  build directory; BENCH_BUILD_JOBS [1]; BENCH_SKIP_BUILD=1
#   BENCH_WAIT_QUIET=1              before each measurement, wait (bounded) for an idle machine
#   BENCH_PG_STATS=1                PostgreSQL with pg_stat_statements; after each backlog run, the
#                                   statements that took the most time; plans of statements slower
#                                   than BENCH_PG_EXPLAIN_MS [1000] go to the PostgreSQL log; commit
#                                   timestamps, for the sse phase's 2xx -> writer commit
#   BENCH_KEEP_LOGS=1               keep the work directory (logs, JSON lines) after exit;
#                                  BENCH_KEEP_PG_DATA=1 keeps its PostgreSQL data directory too
#   WACHAT_INBOUND_WRITERS, WACHAT_HTTP_THREADS, WACHAT_INTAKE_WRITERS pass through to wachatd.
set -euo pipefail
WACHAT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$WACHAT_ROOT"
. scripts/lib/deps.sh
. scripts/lib/pg.sh
. bench/lib.sh

phases=${BENCH_PHASES:-backlog live sse resident}
runs=${BENCH_RUNS:-3}
backlog=${BENCH_BACKLOG:-100000}
visitors=${BENCH_VISITORS:-10000}
live_count=${BENCH_LIVE_COUNT:-100000}
live_rate=${BENCH_LIVE_RATE:-10000}
connections=${BENCH_CONNECTIONS:-64}
sse_rate=${BENCH_SSE_RATE:-2000}
sse_duration=${BENCH_SSE_DURATION:-20}
resident=${BENCH_RESIDENT:-100000}
short_idle=${BENCH_SHORT_IDLE_MS:-5000}
build_dir=${BENCH_BUILD_DIR:-$WACHAT_ROOT/build-bench2}
tools=(wachatd wachat_loadgen wachat_inbox_fill wachat_drain_wait wachat_pg_messages wachat_sse_latency)
phone_number_id=106540352242922  # the one webhook_generator puts in every body
site=bench

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  wachat_install_deps
  cmake -S "$WACHAT_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DWACHAT_TESTS=OFF -DWACHAT_BENCH=ON >&2
  cmake --build "$build_dir" -j"${BENCH_BUILD_JOBS:-1}" --target "${tools[@]}" >&2
fi

work=$(mktemp -d /tmp/wachat-processing.XXXXXX)
chmod 755 "$work"
wachatd_pid=""
bg_pids=()
cleanup() {
  [ "$BASHPID" = "$$" ] || return 0
  for pid in "${bg_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  stop_wachatd
  bench_remove_work "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every autovacuum and autoanalyze goes to the log, so that a phase can say which ran inside it.
WACHAT_PG_OPTIONS="${WACHAT_PG_OPTIONS:-} -c log_autovacuum_min_duration=0"
if [ "${BENCH_PG_STATS:-0}" = 1 ]; then
  WACHAT_PG_OPTIONS+=" -c shared_preload_libraries=pg_stat_statements,auto_explain"
  WACHAT_PG_OPTIONS+=" -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on"
  WACHAT_PG_OPTIONS+=" -c auto_explain.log_min_duration=${BENCH_PG_EXPLAIN_MS:-1000}"
  WACHAT_PG_OPTIONS+=" -c auto_explain.log_analyze=on -c auto_explain.log_buffers=on"
  WACHAT_PG_OPTIONS+=" -c track_commit_timestamp=on"
fi
export WACHAT_PG_OPTIONS
bench_pg_start "$work"

app_secret=$(openssl rand -hex 32)
admin_token=$(openssl rand -hex 24)
http_port=$(wachat_free_port)
base_url="http://127.0.0.1:$http_port"

# start_wachatd IDLE_MS LOG: starts it and waits until it listens; sets wachatd_pid and
# wachatd_started_us (wall clock just before the start, in unix microseconds).
start_wachatd() {
  wachatd_started_us=$(date +%s%6N)
  WACHAT_DATABASE_URL="$db_url" WACHAT_LISTEN="127.0.0.1:$http_port" WHATSAPP_APP_SECRET="$app_secret" \
    WACHAT_ADMIN_TOKEN="$admin_token" WACHAT_CONVERSATION_IDLE_MS="$1" \
    "$build_dir/wachatd" > "$2" 2>&1 &
  wachatd_pid=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$wachatd_pid" 2>/dev/null; then
      echo "bench: wachatd exited during start-up:" >&2
      cat "$2" >&2
      exit 1
    fi
    grep -q 'event=listening' "$2" && return 0
    sleep 0.05
  done
  echo "bench: wachatd did not start in 15 s" >&2
  exit 1
}
stop_wachatd() {
  if [ -n "$wachatd_pid" ] && kill -0 "$wachatd_pid" 2>/dev/null; then
    kill -TERM "$wachatd_pid" 2>/dev/null || true
    for _ in $(seq 1 120); do  # wachatd exits within 10 s of SIGTERM (API.md §1)
      kill -0 "$wachatd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$wachatd_pid" 2>/dev/null || true
    wait "$wachatd_pid" 2>/dev/null || true
  fi
  wachatd_pid=""
}
metric() {  # metric NAME: its value on /metrics
  curl -s --max-time 2 "$base_url/metrics" | awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print "n/a" }'
}
rss_mib() {  # rss_mib FIELD (VmRSS, VmHWM) of wachatd
  awk -v f="$1:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$wachatd_pid/status"
}
# Every phase starts from empty chat tables and inbox; the site and its settings stay.
# With BENCH_PG_STATS=1: statement statistics from here on / the statements that took longest.
pg_stats_reset() {
  [ "${BENCH_PG_STATS:-0}" = 1 ] || return 0
  psql_bench "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
}
pg_stats_report() {
  [ "${BENCH_PG_STATS:-0}" = 1 ] || return 0
  echo "statements by total time (exec ms, plan ms, calls, plans, rows, statement):"
  psql_bench "SELECT round(total_exec_time)::bigint || ' ' || round(total_plan_time)::bigint || ' '
                     || calls || ' ' || plans || ' ' || rows || ' '
                     || left(regexp_replace(query, '\s+', ' ', 'g'), 100)
              FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 15"
}
reset_data() {
  # CASCADE: tables added since (media jobs, CRM links, conversation jobs) refer to these.
  psql_bench "TRUNCATE wa_webhook_events, wa_events, wa_message_statuses, mod_chat_messages, wa_outbox,
              mod_chat_conversations, mod_chat_visitors, mod_chat_notifications RESTART IDENTITY CASCADE"
  psql_bench "CHECKPOINT"
}
# measure_begin / measure_end NAME LOADGEN_CPU_S TOOL_CPU_S: CPU seconds of wachatd (since its
# start), PostgreSQL and everything else on the machine over the measurement.
measure_begin() {
  p0=$(pg_cpu "$work/pg"); m0=$(machine_busy)
}
measure_end() {
  local w p1 m1
  w=$(cpu_of "$wachatd_pid"); p1=$(pg_cpu "$work/pg"); m1=$(machine_busy)
  awk -v w="$w" -v p="$p0" -v P="$p1" -v m="$m0" -v M="$m1" -v l="$2" -v t="$3" -v n="$1" 'BEGIN {
    o = (M - m) - w - (P - p) - l - t
    printf "cpu seconds: wachatd %.1f, postgres %.1f, load tools %.1f; others on the machine %.1f\n", w, P - p, l + t, o
    printf "cpu us per message: wachatd %.0f, postgres %.0f\n", w * 1e6 / n, (P - p) * 1e6 / n
    printf "%.1f %.1f %.1f\n", w * 1e6 / n, (P - p) * 1e6 / n, o > "/dev/stderr"
  }'
}

echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: wachatd $(git -C "$WACHAT_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') on $base_url (inbound writers ${WACHAT_INBOUND_WRITERS:-default}, HTTP threads ${WACHAT_HTTP_THREADS:-default}, intake writers ${WACHAT_INTAKE_WRITERS:-default}); PostgreSQL 15 on port $pg_port"

# The site the webhooks route to (as tests/support/wachat_fixture.cpp make_site does).
start_wachatd 60000 "$work/wachatd-setup.log"
curl -sf -o /dev/null -X POST -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
  -d "{\"id\":\"$site\",\"name\":\"Bench\"}" "$base_url/api/sites"
psql_bench "UPDATE mod_chat_widget_settings SET whatsapp_enabled = true,
            whatsapp_phone_number_id = '$phone_number_id' WHERE site_id = '$site'"
idle_rss=$(rss_mib VmRSS)
stop_wachatd
echo "bench: site '$site' routes phone number id $phone_number_id; idle wachatd VmRSS ${idle_rss} MiB"

status=0
for f in backlog baseline live sse; do : > "$work/$f.jsonl"; : > "$work/$f-cpu.txt"; done

run_backlog() {
  local run=$1 line
  echo "== backlog run $run/$runs: $backlog webhooks from $visitors visitors in the inbox, then wachatd starts =="
  reset_data
  "$build_dir/wachat_inbox_fill" --db "$db_url" --count "$backlog" --visitors "$visitors" \
    --run-id "bl-$$-$run" | head -1
  psql_bench "ANALYZE wa_webhook_events"
  psql_bench "CHECKPOINT"
  wait_quiet
  pg_stats_reset
  measure_begin
  start_wachatd 60000 "$work/wachatd-backlog-$run.log"
  set +e
  "$build_dir/wachat_drain_wait" --db "$db_url" --since-us "$wachatd_started_us" --expect "$backlog" \
    --pid "$wachatd_pid" --timeout 900 | tee "$work/backlog-$run.out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  set -e
  line=$(tail -1 "$work/backlog-$run.out")
  echo "$line" >> "$work/backlog.jsonl"
  echo "wachatd: conversation actors $(metric wachat_conversation_actors), VmRSS $(rss_mib VmRSS) MiB (peak $(rss_mib VmHWM) MiB)"
  measure_end "$backlog" 0 "$(json_num cpu_s "$line")" 2>> "$work/backlog-cpu.txt"
  stop_wachatd
  pg_stats_report

  echo "== baseline run $run/$runs: bare PostgreSQL, the same $backlog messages from $visitors visitors =="
  reset_data
  wait_quiet
  p0=$(pg_cpu "$work/pg"); m0=$(machine_busy)
  set +e
  "$build_dir/wachat_pg_messages" --db "$db_url" --site "$site" --count "$backlog" \
    --visitors "$visitors" --run-id "base-$$-$run" | tee "$work/baseline-$run.out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  set -e
  line=$(tail -1 "$work/baseline-$run.out")
  echo "$line" >> "$work/baseline.jsonl"
  awk -v p="$p0" -v P="$(pg_cpu "$work/pg")" -v m="$m0" -v M="$(machine_busy)" -v l="$(json_num client_cpu_s "$line")" -v n="$backlog" 'BEGIN {
    printf "cpu seconds: postgres %.1f, client %.1f; others on the machine %.1f; postgres us per message %.0f\n", P - p, l, (M - m) - (P - p) - l, (P - p) * 1e6 / n }'
}

run_live() {
  local run=$1 line lg first
  echo "== live run $run/$runs: $live_count signed webhooks from $visitors visitors at up to $live_rate/s over HTTP =="
  reset_data
  start_wachatd 60000 "$work/wachatd-live-$run.log"
  wait_quiet
  measure_begin
  set +e
  "$build_dir/wachat_loadgen" --port "$http_port" --secret "$app_secret" --connections "$connections" \
    --count "$live_count" --rate "$live_rate" --visitors "$visitors" --duration 600 --warmup 0 \
    --run-id "lv-$$-$run" > "$work/live-loadgen-$run.out"
  [ $? -eq 0 ] || status=1
  set -e
  grep -E '^(requests|errors|first send)' "$work/live-loadgen-$run.out"
  lg=$(tail -1 "$work/live-loadgen-$run.out")
  first=$(json_num first_send_unix_us "$lg")
  set +e
  "$build_dir/wachat_drain_wait" --db "$db_url" --since-us "$first" --expect "$(json_num acked "$lg")" \
    --pid "$wachatd_pid" --timeout 900 | tail -2 | tee "$work/live-$run.out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  set -e
  line=$(tail -1 "$work/live-$run.out")
  # The intake's own rate goes beside the processing rate in the summary.
  echo "$line" | sed "s/}\$/,\"intake_2xx_per_s\":$(awk -v a="$(json_num acked "$lg")" -v f="$first" -v l="$(json_num last_ack_unix_us "$lg")" 'BEGIN { printf "%.1f", (l > f) ? a * 1e6 / (l - f) : 0 }')}/" >> "$work/live.jsonl"
  echo "wachatd: conversation actors $(metric wachat_conversation_actors), VmRSS $(rss_mib VmRSS) MiB"
  measure_end "$live_count" "$(json_num cpu_s "$lg")" "$(json_num cpu_s "$line")" 2>> "$work/live-cpu.txt"
  stop_wachatd
}

run_sse() {
  local run=$1 sse_pid line lg
  echo "== sse run $run/$runs: ${sse_rate} webhooks/s for ${sse_duration}s from $visitors visitors, one SSE subscriber =="
  reset_data
  start_wachatd 60000 "$work/wachatd-sse-$run.log"
  rm -f "$work/acks-$run.txt" "$work/sse-ready-$run"
  "$build_dir/wachat_sse_latency" --port "$http_port" --site "$site" --token "$admin_token" \
    --run-id "sse-$$-$run" --ack-log "$work/acks-$run.txt" --ready-file "$work/sse-ready-$run" \
    --grace 300 --timeout $((sse_duration + 600)) > "$work/sse-$run.out" 2>&1 &
  sse_pid=$!
  bg_pids+=("$sse_pid")
  for _ in $(seq 1 100); do
    [ -e "$work/sse-ready-$run" ] && break
    sleep 0.1
  done
  [ -e "$work/sse-ready-$run" ] || { echo "bench: the SSE subscriber did not connect" >&2; cat "$work/sse-$run.out" >&2; exit 1; }
  wait_quiet
  pg_stats_reset
  log_from=$(stat -c %s "$work/postgresql.log")
  measure_begin
  set +e
  "$build_dir/wachat_loadgen" --port "$http_port" --secret "$app_secret" --connections "$connections" \
    --rate "$sse_rate" --duration "$sse_duration" --warmup 0 --visitors "$visitors" \
    --run-id "sse-$$-$run" --ack-log "$work/acks-$run.txt" > "$work/sse-loadgen-$run.out"
  [ $? -eq 0 ] || status=1
  wait "$sse_pid" || status=1
  set -e
  grep -E '^(requests|errors|throughput|latency)' "$work/sse-loadgen-$run.out"
  grep -E "^(sse:|acknowledged|p99/max)" "$work/sse-$run.out"
  lg=$(tail -1 "$work/sse-loadgen-$run.out")
  line=$(tail -1 "$work/sse-$run.out")
  echo "$line" >> "$work/sse.jsonl"
  # Whether the events lag behind storing, or storing behind the webhooks.
  echo "stored vs sent: the last inbox row finished $(awk -v f="$(json_num first_send_unix_us "$lg")" \
    -v p="$(psql_bench "SELECT (extract(epoch from max(processed_at)) * 1e6)::bigint FROM wa_webhook_events")" \
    'BEGIN { printf "%.1f", (p - f) / 1e6 }') s after the first send; the last event arrived $(json_num first_ack_to_last_event_s "$line") s after the first 2xx"
  measure_end "$(json_num acked "$lg")" "$(json_num cpu_s "$lg")" "$(json_num cpu_s "$line")" 2>> "$work/sse-cpu.txt"
  autovacuum_report "$log_from"
  stop_wachatd
  sse_stages "sse-$$-$run" "$work/acks-$run.txt"
  pg_stats_report
}

# autovacuum_report OFFSET: the autovacuums and autoanalyzes PostgreSQL logged after byte OFFSET
# of its log (they compete with the phase for the two cores).
autovacuum_report() {
  local lines
  lines=$(tail -c +"$(($1 + 1))" "$work/postgresql.log" | grep -E 'automatic (aggressive )?(vacuum|analyze) of table' \
    | sed -E 's/^([0-9-]+ )?([0-9:.]+).*automatic (aggressive )?(vacuum|analyze) of table "[^.]+\.[^.]+\.([^"]+)".*/\2 \4 \5/' || true)
  echo "autovacuum during the phase: ${lines:-none}" | tr '\n' ';' | sed 's/;$/\n/'
}

# sse_stages RUN ACK_LOG: where the latency arises. The writer's transaction start (the
# message.created event's created_at) and the inbox row's processed_at, each minus the 2xx.
sse_stages() {
  psql_bench "CREATE TABLE IF NOT EXISTS bench_acks (seq bigint, at_us bigint); TRUNCATE bench_acks"
  wachat_as_pg "$WACHAT_PG_BIN/psql" -h "$bench_pg_dir" -p "$pg_port" -U wachat -d wachat_bench \
    -qc "\\copy bench_acks FROM STDIN WITH (DELIMITER ' ')" < "$2"
  psql_bench "WITH d AS (SELECT (extract(epoch FROM e.created_at) * 1e6 - a.at_us) / 1000 AS ms
      FROM bench_acks a JOIN mod_chat_messages m
        ON m.site_id = '$site' AND m.whatsapp_message_id = 'wamid.$1.' || lpad(a.seq::text, 12, '0')
      JOIN wa_events e ON e.message_id = m.id AND e.type = 'message.created')
    SELECT 'stages: 2xx -> writer transaction start ms: p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)
      || ' p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' (' || count(*) || ' messages)' FROM d"
  # With track_commit_timestamp (BENCH_PG_STATS=1 turns it on): the writer's commit as well.
  if [ "$(psql_bench "SHOW track_commit_timestamp")" = on ]; then
    psql_bench "WITH d AS (SELECT (extract(epoch FROM pg_xact_commit_timestamp(e.xmin)) * 1e6 - a.at_us) / 1000 AS ms
        FROM bench_acks a JOIN mod_chat_messages m
          ON m.site_id = '$site' AND m.whatsapp_message_id = 'wamid.$1.' || lpad(a.seq::text, 12, '0')
        JOIN wa_events e ON e.message_id = m.id AND e.type = 'message.created')
      SELECT 'stages: 2xx -> writer commit ms: p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)
        || ' p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM d"
  fi
}

run_resident() {
  local n waited  # the rest is read by the summary
  echo "== resident: $resident messages from $resident distinct visitors, conversation idle time 1 h =="
  reset_data
  "$build_dir/wachat_inbox_fill" --db "$db_url" --count "$resident" --visitors "$resident" \
    --run-id "res-$$" | head -1
  wait_quiet
  start_wachatd 3600000 "$work/wachatd-resident-1.log"
  "$build_dir/wachat_drain_wait" --db "$db_url" --since-us "$wachatd_started_us" --expect "$resident" \
    --pid "$wachatd_pid" --timeout 900 | tail -2 | head -1
  sleep 1
  res_actors=$(metric wachat_conversation_actors)
  res_rss=$(rss_mib VmRSS)
  res_hwm=$(rss_mib VmHWM)
  echo "resident: wachat_conversation_actors $res_actors, VmRSS $res_rss MiB (peak $res_hwm MiB; idle wachatd $idle_rss MiB)"
  stop_wachatd

  echo "== resident: the same visitors again, conversation idle time ${short_idle} ms =="
  "$build_dir/wachat_inbox_fill" --db "$db_url" --count "$resident" --visitors "$resident" \
    --start-seq "$resident" --run-id "res-$$" | head -1
  start_wachatd "$short_idle" "$work/wachatd-resident-2.log"
  "$build_dir/wachat_drain_wait" --db "$db_url" --since-us "$wachatd_started_us" \
    --expect $((2 * resident)) --pid "$wachatd_pid" --timeout 900 | tail -2 | head -1
  waited=0
  drop_series=""
  while :; do
    n=$(metric wachat_conversation_actors)
    drop_series+="${waited}s:$n "
    [ "$n" = 0 ] && break
    [ "$waited" -ge 120 ] && break
    sleep 1
    waited=$((waited + 1))
  done
  drop_actors=$n
  drop_rss=$(rss_mib VmRSS)
  echo "resident: conversation actors each second after the drain: $drop_series(VmRSS now $drop_rss MiB)"
  # A new message from visitor 0 (body 2R is visitor 2R mod R = 0), signed, over HTTP.
  "$build_dir/wachat_loadgen" --port "$http_port" --secret "$app_secret" --connections 1 --count 1 \
    --start-seq $((2 * resident)) --visitors "$resident" --duration 10 --warmup 0 \
    --run-id "res-$$" > "$work/resident-again.out"
  "$build_dir/wachat_drain_wait" --db "$db_url" --since-us "$(date +%s%6N)" --poll-ms 10 \
    --expect $((2 * resident + 1)) --timeout 30 > /dev/null
  back_actors=$(metric wachat_conversation_actors)
  old_conv=$(psql_bench "SELECT conversation_id FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.res-$$.000000000000'")
  new_conv=$(psql_bench "SELECT conversation_id FROM mod_chat_messages WHERE whatsapp_message_id = 'wamid.res-$$.$(printf '%012d' $((2 * resident)))'")
  n_conv=$(psql_bench "SELECT count(*) FROM mod_chat_conversations WHERE visitor_id = (SELECT visitor_id FROM mod_chat_conversations WHERE id = '$old_conv')")
  echo "resident: after a new message of visitor 0: conversation actors $back_actors; its conversation $new_conv, the first message's $old_conv; the visitor has $n_conv conversation(s)"
  sleep $(awk -v ms="$short_idle" 'BEGIN { printf "%.1f", ms / 1000 + 2 }')
  again_actors=$(metric wachat_conversation_actors)
  echo "resident: conversation actors ${short_idle} ms later: $again_actors"
  stop_wachatd
}

for run in $(seq 1 "$runs"); do
  case " $phases " in *" backlog "*) run_backlog "$run" ;; esac
done
for run in $(seq 1 "$runs"); do
  case " $phases " in *" live "*) run_live "$run" ;; esac
done
for run in $(seq 1 "$runs"); do
  case " $phases " in *" sse "*) run_sse "$run" ;; esac
done
case " $phases " in *" resident "*) run_resident ;; esac

verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
col() {  # col KEY FILE: median of KEY over the JSON lines of FILE, rounded
  while read -r l; do json_num "$1" "$l"; done < "$work/$2.jsonl" | median \
    | awk '{ if ($1 >= 100) printf "%.0f\n", $1; else printf "%.2f\n", $1 }'
}
echo "== summary: medians of $runs run(s) =="
if [ -s "$work/backlog.jsonl" ]; then
  b=$(col messages_per_s backlog); base=$(col messages_per_s baseline)
  echo "backlog drain: $b messages/s ($backlog messages, $visitors visitors; drain $(col drain_s backlog) s from wachatd's start; median per second $(col median_messages_per_s backlog) messages)"
  echo "bare PostgreSQL, same rows: $base messages/s (messages alone $(col messages_only_per_s baseline)/s)"
  echo "ratio wachat/baseline: $(awk -v a="$b" -v c="$base" 'BEGIN { if (c > 0) printf "%.3f", a / c; else print "n/a" }')"
  echo "cpu us per message: wachatd $(cut -d' ' -f1 "$work/backlog-cpu.txt" | median), postgres $(cut -d' ' -f2 "$work/backlog-cpu.txt" | median); others' cpu s per run $(cut -d' ' -f3 "$work/backlog-cpu.txt" | median)"
  echo "target >= 10000 messages/s (backlog): $(verdict "$(awk -v a="$b" 'BEGIN { print (a >= 10000) }')")"
fi
if [ -s "$work/live.jsonl" ]; then
  l=$(col messages_per_s live)
  echo "live: $l messages/s first delivery -> last stored ($live_count webhooks, target rate $live_rate/s; intake answered $(col intake_2xx_per_s live) 2xx/s)"
  echo "cpu us per message: wachatd $(cut -d' ' -f1 "$work/live-cpu.txt" | median), postgres $(cut -d' ' -f2 "$work/live-cpu.txt" | median); others' cpu s per run $(cut -d' ' -f3 "$work/live-cpu.txt" | median)"
  echo "target >= 10000 messages/s (live): $(verdict "$(awk -v a="$l" 'BEGIN { print (a >= 10000) }')")"
fi
if [ -s "$work/sse.jsonl" ]; then
  p99=$(col p99 sse)
  echo "acknowledged -> message.created at $sse_rate/s: p50 $(col p50 sse) ms, p95 $(col p95 sse) ms, p99 $p99 ms, max $(col max sse) ms; missing events (median) $(col missing sse)"
  echo "target p99 <= 100 ms: $(verdict "$(awk -v a="$p99" 'BEGIN { print (a <= 100) }')")"
fi
if [ -n "${res_actors:-}" ]; then
  echo "resident: $res_actors conversation actors in VmRSS $res_rss MiB (idle $idle_rss MiB); short idle: gauge $drop_actors after the wait, $back_actors after an old visitor wrote (conversation $new_conv, first $old_conv, $n_conv conversation(s))"
  echo "target $resident resident (100,000 in DESIGN.md) <= 512 MiB: $(verdict "$(awk -v a="$res_rss" -v n="$res_actors" -v r="$resident" 'BEGIN { print (a <= 512 && n >= r) }')")"
  echo "target idle actors stop and come back: $(verdict "$([ "$drop_actors" = 0 ] && [ "$back_actors" -ge 1 ] 2>/dev/null && [ "$old_conv" = "$new_conv" ] && [ "$n_conv" = 1 ] && echo 1 || echo 0)")"
fi
exit "$status"
