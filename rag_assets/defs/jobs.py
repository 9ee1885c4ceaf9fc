"""Jobs. Everything in JOBS is registered."""

import dagster as dg

# The main job (what the quickstart runs): index the docs source, evaluate it, and the offline learning steps that
# need no server: cold-start questions, the docs-area classifier, the tuned fusion, and the router.
rag_pipeline = dg.define_asset_job(
    "rag_pipeline",
    selection=dg.AssetSelection.groups("ingestion", "evaluation", "cold_start", "routing"),
    description="Ingest the docs source, index and evaluate it; cold-start questions, tag classifier, tuned "
                "fusion and router.",
    tags={"rag/refresh": "job"},  # writes the data dir: one such run at a time (dagster.yaml)
)

# Launched by the docs change sensor and the refresh schedule (issue 5): each stage only redoes what changed.
refresh = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Re-index the docs source incrementally: changed documents only, new chunk ids only.",
    tags={"rag/refresh": "job"},
)

# Launched by the evaluate_after_reindex sensor once new indexes are in place.
evaluation = dg.define_asset_job(
    "evaluation",
    selection=dg.AssetSelection.groups("evaluation"),
    description="Evaluate the current indexes (unchanged answers are not judged again).",
)

JOBS: list = [rag_pipeline, refresh, evaluation]
