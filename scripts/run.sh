#!/usr/bin/env bash
# Installs what is missing, builds, starts an embedded PostgreSQL and runs wachatd. Secrets are
# kept in ./var/; the cluster in ./var/pg, or as root in /var/lib/wachat/<hash of this checkout's
# path>/pg (WACHAT_PG_DATA overrides; see wachat_pg_data_dir in scripts/lib/pg.sh).
# Usage: scripts/run.sh   (WACHAT_LISTEN, WHATSAPP_* and the other settings pass through)
set -euo pipefail
WACHAT_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$WACHAT_ROOT"
. scripts/lib/deps.sh
. scripts/lib/pg.sh

wachat_install_deps
wachat_build "$WACHAT_ROOT/build"

var="$WACHAT_ROOT/var"
mkdir -p "$var"
chmod 755 "$var"
umask 077
# Secrets are made once and kept, readable by their owner only.
[ -s "$var/admin_token" ] || openssl rand -hex 32 > "$var/admin_token"
[ -s "$var/master_key" ] || openssl rand -base64 32 > "$var/master_key"
[ -s "$var/pg_password" ] || openssl rand -hex 24 > "$var/pg_password"
chmod 600 "$var/admin_token" "$var/master_key" "$var/pg_password"
umask 022

pg_port=${WACHAT_PG_PORT:-54329}
pg_data=$(wachat_pg_data_dir "$WACHAT_ROOT")
pg_log="$(dirname "$pg_data")/postgresql.log"
if [ ! -f "$pg_data/PG_VERSION" ]; then
  wachat_pg_init "$pg_data" "$var/pg_password"
fi
if ! wachat_pg_running "$pg_data"; then
  wachat_pg_start "$pg_data" "$pg_port" "$pg_log"
fi
wachat_as_pg "$WACHAT_PG_BIN/psql" -h "$pg_data" -p "$pg_port" -U wachat -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='wachat'" | grep -q 1 \
  || wachat_as_pg "$WACHAT_PG_BIN/createdb" -h "$pg_data" -p "$pg_port" -U wachat wachat
# As root the cluster lives outside the checkout, so it outlives ./var/: a fresh clone at the same
# path made a new password. The local socket is trusted: the role takes the one in ./var/ (sent
# on stdin, never on a command line).
printf "ALTER ROLE wachat PASSWORD '%s';\n" "$(cat "$var/pg_password")" \
  | wachat_as_pg "$WACHAT_PG_BIN/psql" -h "$pg_data" -p "$pg_port" -U wachat -d postgres -q >/dev/null

export WACHAT_DATABASE_URL="postgresql://wachat:$(cat "$var/pg_password")@127.0.0.1:$pg_port/wachat"
export WACHAT_ADMIN_TOKEN="${WACHAT_ADMIN_TOKEN:-$(cat "$var/admin_token")}"
export WACHAT_MASTER_KEY="${WACHAT_MASTER_KEY:-$(cat "$var/master_key")}"
export WACHAT_MEDIA_DIR="${WACHAT_MEDIA_DIR:-$var/media}"
pg_stop="$WACHAT_PG_BIN/pg_ctl -D $pg_data stop"
if [ "$(id -u)" -eq 0 ]; then
  pg_stop="(cd / && runuser -u postgres -- $pg_stop)"
fi
echo "wachat: admin token is in $var/admin_token; PostgreSQL data in $pg_data, log in $pg_log" >&2
echo "wachat: console at http://${WACHAT_LISTEN:-127.0.0.1:8080}/console/ (sign in with the admin token)" >&2
echo "wachat: the embedded PostgreSQL keeps running for the next start; stop it with" >&2
echo "        $pg_stop" >&2
exec "$WACHAT_ROOT/build/wachatd" "$@"
