"""The code location: `dagster dev -w workspace.yaml` and `dagster asset materialize -m rag_assets.definitions`.

Each pipeline stage under `rag_assets/defs/` lists its own ASSETS, CHECKS, SENSORS, SCHEDULES and JOBS;
this module only gathers them.
"""

import dagster as dg

from rag_assets.defs import evaluate, experiments, feedback, finetune, index, ingest, jobs, questions, route, serve
from rag_assets.defs.resources import RagSettings

STAGES = (ingest, index, evaluate, experiments, questions, route, finetune, serve, feedback)


def _gather(name: str) -> list:
    return [item for stage in STAGES for item in getattr(stage, name, [])]


defs = dg.Definitions(
    assets=_gather("ASSETS"),
    asset_checks=_gather("CHECKS"),
    jobs=[*jobs.JOBS, *_gather("JOBS")],
    schedules=_gather("SCHEDULES"),
    sensors=_gather("SENSORS"),
    resources={"rag": RagSettings()},
)
