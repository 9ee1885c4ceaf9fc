"""Ingestion wiring: docs -> sections -> chunks -> embeddings, the docs_changed sensor and the refresh schedule."""

import dagster as dg

from rag_assets.defs.ingest import assets, schedules, sensors

ASSETS = dg.load_assets_from_modules([assets])
SENSORS = [sensors.docs_changed]
SCHEDULES = [schedules.refresh_schedule]
