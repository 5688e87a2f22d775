#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the tests and print its URL.
# Usage: eval "$(bash .ci/postgres.sh)"   (sets POPTRAIN_TEST_POSTGRES_URL)
set -euo pipefail
PORT="${POPTRAIN_PG_PORT:-54329}"
DATA="${POPTRAIN_PG_DATA:-/tmp/poptrain-pg-$PORT}"
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
if [ ! -x "$BIN/initdb" ]; then
  echo "echo 'PostgreSQL binaries not found; install the postgresql package' >&2"
  exit 1
fi
RUN=(su postgres -s /bin/bash -c)
if [ "$(id -u)" != "0" ]; then RUN=(bash -c); fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  mkdir -p "$DATA"
  [ "$(id -u)" = "0" ] && chown postgres:postgres "$DATA"
  "${RUN[@]}" "$BIN/initdb -D '$DATA' -A trust -U postgres >/dev/null"
fi
if [ -f "$DATA/postmaster.pid" ] && ! kill -0 "$(head -1 "$DATA/postmaster.pid")" 2>/dev/null; then
  rm -f "$DATA/postmaster.pid"  # left by a server that was killed
fi
if ! "${RUN[@]}" "$BIN/pg_ctl -D '$DATA' status" >/dev/null 2>&1; then
  if ! "${RUN[@]}" "$BIN/pg_ctl -D '$DATA' -l '$DATA/server.log' -w -o \"-p $PORT -h 127.0.0.1 -k /tmp -c max_connections=300 -c fsync=off\" start" >/dev/null; then
    tail -5 "$DATA/server.log" >&2
    exit 1
  fi
fi
"${RUN[@]}" "psql -h 127.0.0.1 -p $PORT -U postgres -tAc \"SELECT 1 FROM pg_roles WHERE rolname='poptrain'\"" | grep -q 1 || \
  "${RUN[@]}" "psql -h 127.0.0.1 -p $PORT -U postgres -c \"CREATE ROLE poptrain LOGIN SUPERUSER PASSWORD 'poptrain-secret'\"" >/dev/null
echo "export POPTRAIN_TEST_POSTGRES_URL=postgresql://poptrain:poptrain-secret@127.0.0.1:$PORT/postgres"
