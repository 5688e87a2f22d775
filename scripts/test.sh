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
# pip warns about every local index folder it cannot find; keep real errors.
pip_install() { "$VENV/bin/pip" install -q --disable-pip-version-check "$@" 2> >(grep -v '^WARNING: Location' >&2); }
# The pinned CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
pip_install torch==2.13.0
pip_install -c .ci/constraints.txt -e '.[test,torch,postgres,pb2,report,s3,ray,tensorboard,mlflow]'
if [ -f bench/requirements.txt ]; then pip_install -c .ci/constraints.txt -r bench/requirements.txt; fi

# The tests need a real PostgreSQL server: fail here, plainly, if it cannot start.
pg_env="$(bash .ci/postgres.sh)" || { echo "could not start PostgreSQL for the tests (see .ci/postgres.sh)" >&2; exit 1; }
eval "$pg_env"
export POPTRAIN_TEST_POSTGRES_URL
exec "$VENV/bin/python" -m pytest -q "$@"
