#!/usr/bin/env bash
# Set up (first run) and start the embedded stack: API on http://127.0.0.1:8000, Celery worker, sweeper.
# Extra arguments go to `doclake up` (e.g. --port 9000). Data lives in ${DOCLAKE_DATA_DIR:-./data}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 DO_NOT_TRACK=1
exec .venv/bin/doclake up "$@"
