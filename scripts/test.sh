#!/usr/bin/env bash
# Set up (first run) and run every check: ruff, mypy, and all tests including the real-stack ones.
# Extra arguments go to pytest (e.g. -m "not e2e" to skip the slow end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export HF_HUB_OFFLINE=1 DO_NOT_TRACK=1
.venv/bin/ruff check app workers pipelines tests
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" = 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$code"
