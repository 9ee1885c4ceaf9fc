#!/usr/bin/env bash
# Set up, then run the test suite (real Dagster, Ray, LanceDB, Tantivy and the bundled model; no network).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest "$@"
