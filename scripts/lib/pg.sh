# shellcheck shell=bash
# An embedded PostgreSQL 15 in a directory of ours. Sourced by run.sh, test.sh and bench/run.sh.
# PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
WACHAT_PG_BIN=${WACHAT_PG_BIN:-/usr/lib/postgresql/15/bin}

# As root it runs from / : initdb and pg_ctl fail when they cannot return to the working
# directory, e.g. a checkout in /root (so paths given to it must be absolute).
wachat_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && exec runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# wachat_pg_init DIR PASSWORD_FILE: a new cluster whose superuser is `wachat`.
wachat_pg_init() {
  local dir=$1 pwfile=$2
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
  fi
  # A copy in /tmp that initdb (as root: the postgres user) can read, mode 0600; removed right after.
  local tmp_pw rc=0
  tmp_pw=$(mktemp /tmp/wachat-pgpw.XXXXXX)
  cat "$pwfile" > "$tmp_pw"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$tmp_pw"
  fi
  wachat_as_pg "$WACHAT_PG_BIN/initdb" -D "$dir" -U wachat --pwfile="$tmp_pw" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >/dev/null || rc=$?
  rm -f "$tmp_pw"
  return "$rc"
}

# wachat_pg_data_dir CHECKOUT: the data directory run.sh uses for CHECKOUT. WACHAT_PG_DATA when
# set; else a cluster an earlier run left in CHECKOUT/var/pg; else CHECKOUT/var/pg when not root.
# As root the cluster belongs to `postgres`, which may not enter the checkout (a clone in /root),
# so it lives in /var/lib/wachat/<16 hex digits of the checkout path's SHA-256>/pg: kept across
# runs, one per checkout.
wachat_pg_data_dir() {
  local checkout=$1
  if [ -n "${WACHAT_PG_DATA:-}" ]; then
    case $WACHAT_PG_DATA in
      /*) echo "${WACHAT_PG_DATA%/}" ;;
      *) echo "$PWD/${WACHAT_PG_DATA%/}" ;;
    esac
  elif [ -f "$checkout/var/pg/PG_VERSION" ] || [ "$(id -u)" -ne 0 ]; then
    echo "$checkout/var/pg"
  else
    echo "/var/lib/wachat/$(printf '%s' "$checkout" | sha256sum | cut -c1-16)/pg"
  fi
}

# wachat_pg_start DIR PORT LOGFILE: starts the cluster on 127.0.0.1:PORT, sockets in DIR.
# WACHAT_PG_OPTIONS adds server options (the benchmark's statement statistics use it).
# max_wal_size 4GB: each webhook writes about 2.6 kB of WAL (its row, then its outcome), so at
# 20,000 webhooks/s the default 1GB set off a checkpoint every ten seconds or so, and commits
# waited behind its sync (intake p99 350-410 ms against 17-20 ms in 15 s wrk runs;
# bench/RESULTS.md, set 13). Under sustained load checkpoints still come, less often. The WAL
# takes up to that much disk under such load and shrinks back when idle.
wachat_pg_start() {
  local dir=$1 port=$2 log=$3
  touch "$log"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$log"
  fi
  wachat_as_pg "$WACHAT_PG_BIN/pg_ctl" -D "$dir" -l "$log" -w -t 60 start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB -c synchronous_commit=on ${WACHAT_PG_OPTIONS:-}" >/dev/null
}

wachat_pg_stop() {
  local dir=$1
  if [ -f "$dir/postmaster.pid" ]; then
    wachat_as_pg "$WACHAT_PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  fi
}

wachat_pg_running() {
  local dir=$1
  wachat_as_pg "$WACHAT_PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1
}

# A TCP port nobody listens on right now.
wachat_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}
