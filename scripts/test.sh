#!/usr/bin/env bash
# Set up (first run) and run every check: ruff, mypy, and all tests including the real-stack ones.
# Extra arguments go to pytest (e.g. -m "not e2e" to skip the slow end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# Integration tests run real servers as local processes: Redis comes from Debian's package.
if ! command -v redis-server >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is required for the integration tests (apt-get install redis-server)" >&2
    exit 1
  fi
fi
export HF_HUB_OFFLINE=1 DO_NOT_TRACK=1
.venv/bin/ruff check app workers pipelines tests examples
.venv/bin/mypy
.venv/bin/mypy examples  # not a package: checked as files, same strict config
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" = 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$code"
