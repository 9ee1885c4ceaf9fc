"""The code location: `dagster dev -w workspace.yaml` and `dagster asset materialize -m rag_assets.definitions`."""

from __future__ import annotations

import dagster as dg

from rag_assets.defs.assets import ingest
from rag_assets.defs.resources import RagSettings

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingest]),
    resources={"rag": RagSettings()},
)
