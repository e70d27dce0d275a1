# Helpers of the benchmark scripts: CPU accounting on a shared machine, JSON lines, medians.
# Sourced by bench/run.sh, bench/processing.sh, bench/sending.sh and bench/media.sh.

# CPU seconds (user + system) of a process, from /proc; 0 when it is gone.
cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# pg_cpu DATA_DIR: CPU seconds of PostgreSQL, the postmaster with the children it has reaped
# (backends that came and went) plus its live children (backends, walwriter, checkpointer).
pg_cpu() {
  local pm sum pid
  pm=$(head -1 "$1/postmaster.pid")
  sum=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15 + $16 + $17) / hz }' "/proc/$pm/stat")
  for pid in $(ps -o pid= --ppid "$pm"); do
    sum=$(awk -v a="$sum" -v b="$(cpu_of "$pid")" 'BEGIN { printf "%.2f", a + b }')
  done
  echo "$sum"
}

# Busy CPU seconds of the whole machine (other people's work included), from /proc/stat.
machine_busy() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat
}

# With BENCH_WAIT_QUIET=1, wait (at most BENCH_QUIET_MAX s, default 600) until the machine uses
# less than a fifth of a core, so that a measurement does not start inside someone's build.
wait_quiet() {
  [ "${BENCH_WAIT_QUIET:-0}" = 1 ] || return 0
  local waited=0 a b
  while [ "$waited" -lt "${BENCH_QUIET_MAX:-600}" ]; do
    a=$(machine_busy); sleep 2; b=$(machine_busy)
    if awk -v a="$a" -v b="$b" 'BEGIN { exit !((b - a) / 2 < 0.2) }'; then
      return 0
    fi
    waited=$((waited + 2))
  done
  echo "bench: machine still busy after ${waited}s; measuring anyway" >&2
}

json_num() {  # json_num KEY LINE: the first numeric value of "KEY": in our one-line JSON
  { grep -o "\"$1\":[-0-9.e+]*" <<<"$2" | head -1 | cut -d: -f2; } || true
}

median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_pg_start WORK: a throwaway PostgreSQL in WORK/pg with the database wachat_bench; sets
# pg_port and db_url and defines psql_bench SQL. WACHAT_PG_OPTIONS passes server options;
# BENCH_PG_TCP=1 connects over 127.0.0.1 instead of the Unix socket.
bench_pg_start() {
  local work=$1
  openssl rand -hex 16 > "$work/pg_password"
  wachat_pg_init "$work/pg" "$work/pg_password"
  pg_port=$(wachat_free_port)
  wachat_pg_start "$work/pg" "$pg_port" "$work/postgresql.log"
  wachat_as_pg "$WACHAT_PG_BIN/createdb" -h "$work/pg" -p "$pg_port" -U wachat wachat_bench
  if [ "${BENCH_PG_TCP:-0}" = 1 ]; then
    db_url="postgresql://wachat:$(cat "$work/pg_password")@127.0.0.1:$pg_port/wachat_bench"
  else
    # The Unix socket, as for a PostgreSQL on the same host: loopback TCP costs both sides
    # CPU in the kernel's TCP stack for every result and statement.
    db_url="postgresql://wachat:$(cat "$work/pg_password")@/wachat_bench?host=$work/pg&port=$pg_port"
  fi
  bench_pg_dir="$work/pg"
}
psql_bench() {
  wachat_as_pg "$WACHAT_PG_BIN/psql" -h "$bench_pg_dir" -p "$pg_port" -U wachat -d wachat_bench \
    -qtAc "$1"
}

# bench_remove_work WORK: stops the benchmark's PostgreSQL and removes WORK, unless
# BENCH_KEEP_LOGS=1 asks to keep its logs. The data directory goes even then (a 90 s intake run
# leaves 14 GB of table and WAL; kept runs once filled this machine's disk to 90 % and slowed
# every run after): BENCH_KEEP_PG_DATA=1 keeps it too.
bench_remove_work() {
  local work=$1
  wachat_pg_stop "$work/pg"
  if [ "${BENCH_KEEP_LOGS:-0}" = 1 ]; then
    if [ "${BENCH_KEEP_PG_DATA:-0}" != 1 ]; then
      rm -rf "$work/pg"
    fi
    echo "bench: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
}

# For tools that start wachatd through the test support (wachat_send_bench, wachat_media_bench):
# their own build would start the wachatd whose path it was compiled with, so point them at
# BUILD_DIR's (BENCH_BUILD_DIR may hold another build's binaries, for an A/B), and say which.
bench_use_wachatd() {
  export WACHAT_TEST_WACHATD="$1/wachatd"
  [ -x "$WACHAT_TEST_WACHATD" ] || { echo "bench: no wachatd at $WACHAT_TEST_WACHATD (BENCH_BUILD_DIR)" >&2; exit 2; }
  echo "bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wachatd $(git rev-parse --short HEAD 2>/dev/null || echo '?'), binary $(readlink -f "$WACHAT_TEST_WACHATD") sha256 $(sha256sum "$WACHAT_TEST_WACHATD" | cut -c1-12)"
}
