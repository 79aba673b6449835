#!/usr/bin/env bash
# Run a command with throwaway PostgreSQL and Redis servers, then stop them, even on failure.
#
#   bash .ci/with-services.sh CMD [ARGS...]
#
# Exports DATABASE_URL and REDIS_URL for CMD, plus TOLLGATE_TEST_* variables that let tests
# stop and restart the servers. Installs redis-server (and PostgreSQL) with apt-get when they
# are missing and we are root; otherwise a missing server is an error, never a skip.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  if ! is_root; then
    log "$1 is missing and we are not root to install it: install it and retry"
    exit 1
  fi
  log "installing $* with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
[ -n "$(pg_bindir)" ] || apt_install postgresql
command -v redis-server >/dev/null || apt_install redis-server
# Browser tests (tests/e2e/test_browser_*.py) drive Debian's Chromium, never a downloaded one.
[ -x /usr/bin/chromium ] || ! is_root || apt_install chromium
PG_BIN=$(pg_bindir)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d /tmp/tollgate-services.XXXXXX)
chmod 755 "$WORK"
PG_DATA="$WORK/pg"
# Tests trade durability for speed; benchmarks (TOLLGATE_PG_DURABLE=1) keep PostgreSQL's defaults.
if [ "${TOLLGATE_PG_DURABLE:-0}" = 1 ]; then
  PG_SPEED_OPTS=""
else
  PG_SPEED_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)

as_pg() {
  # initdb and postgres refuse to run as root.
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  set +e
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1
  if [ -f "$WORK/redis.pid" ]; then kill "$(cat "$WORK/redis.pid")" 2>/dev/null; fi
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

mkdir -p "$PG_DATA"
is_root && chown postgres: "$PG_DATA"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log" >&2; exit 1; }
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 \
  -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 $PG_SPEED_OPTS -c max_connections=300" \
  start >/dev/null || { cat "$PG_DATA/server.log" >&2; exit 1; }
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres tollgate
log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --dir "$WORK" --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { log "redis did not start"; cat "$WORK/redis.log" >&2; exit 1; }
log "Redis $(redis-server --version | awk '{print $3}') on 127.0.0.1:$REDIS_PORT"

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/tollgate"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CELERY_TASK_ALWAYS_EAGER="${CELERY_TASK_ALWAYS_EAGER:-true}"
export TOLLGATE_TEST_SERVICES_DIR="$WORK"
export TOLLGATE_TEST_REDIS_PORT="$REDIS_PORT"
export TOLLGATE_TEST_PG_BIN="$PG_BIN"
export TOLLGATE_TEST_PG_DATA="$PG_DATA"
export TOLLGATE_TEST_PG_PORT="$PG_PORT"

set +e
"$@"
status=$?
exit $status
