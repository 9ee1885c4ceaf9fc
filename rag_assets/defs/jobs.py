"""Jobs. Everything in JOBS is registered."""

import dagster as dg

# The main job: every ingestion asset on the configured docs source (evaluation joins it as it lands).
rag_pipeline = dg.define_asset_job(
    "rag_pipeline",
    selection=dg.AssetSelection.groups("ingestion", "evaluation"),
    description="Ingest the docs source, index it and evaluate it.",
)

JOBS: list = [rag_pipeline]
