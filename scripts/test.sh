#!/usr/bin/env bash
# Quick start: set up .venv if needed, lint with ruff, then run the test suite with pytest
# on PYTEST_WORKERS processes (pytest-xdist, default 2: one per core here, each torch on one
# thread), listing the 25 slowest tests. Extra arguments go to pytest (e.g. -m "not slow",
# -k search; -n 0 runs in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ruff check .
ruff format --check .
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python -m pytest -n "${PYTEST_WORKERS:-2}" --durations=25 "$@"
