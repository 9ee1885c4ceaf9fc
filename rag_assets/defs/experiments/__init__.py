"""Experiments wiring: the sweep's partitioned assets, the comparison table and the promote_variant job."""

from rag_assets.defs.experiments import assets

ASSETS = [assets.experiment_chunks, assets.experiment_embeddings, assets.experiment_results, assets.experiments_table]
JOBS = assets.JOBS
