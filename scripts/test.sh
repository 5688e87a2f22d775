#!/usr/bin/env bash
# Install everything the tests need and run them: a virtual environment with
# the CPU build of torch and every extra, a real PostgreSQL server on
# 127.0.0.1 and Debian's Chromium for the browser tests. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = "0" ]; then
  need=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  fi
fi

VENV="${POPTRAIN_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# The pinned CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -e '.[test,torch,postgres,pb2,report,ray,tensorboard,mlflow]'

eval "$(bash .ci/postgres.sh)"
export POPTRAIN_TEST_POSTGRES_URL
exec "$VENV/bin/python" -m pytest -q "$@"
