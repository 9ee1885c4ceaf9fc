"""The code location: `dagster dev -w workspace.yaml` and `dagster asset materialize -m rag_assets.definitions`."""

import dagster as dg

from rag_assets.defs import checks, jobs, schedules, sensors
from rag_assets.defs.assets import evaluation, experiments, ingest
from rag_assets.defs.resources import RagSettings

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingest, evaluation, experiments]),
    asset_checks=dg.load_asset_checks_from_modules([checks]),
    jobs=[*jobs.JOBS, *experiments.JOBS],
    schedules=schedules.SCHEDULES,
    sensors=sensors.SENSORS,
    resources={"rag": RagSettings()},
)
