#!/usr/bin/env bash
# Set up, then materialize every asset on the bundled corpus (or RAG_DOCS_DIR) and say where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="$PWD" RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
mkdir -p data/dagster
# Through the workspace's code location (as the UI's Launch button does), so the run is listed under the
# rag_pipeline job of `dagster dev -w workspace.yaml`; a plain `dagster job execute -m` run is not.
.venv/bin/python scripts/launch_job.py rag_pipeline -w workspace.yaml -l rag_assets
cat <<MSG

Done. Everything was materialized into ${RAG_DATA_DIR:-$PWD/data}.
  Open the UI:      DAGSTER_HOME=$PWD .venv/bin/dagster dev -w workspace.yaml   (then http://127.0.0.1:3000)
  Search:           .venv/bin/rag-assets search "how do I read a csv file" --mode hybrid -k 5
  Settings:         .venv/bin/rag-assets config   (every value and where it came from)
MSG
